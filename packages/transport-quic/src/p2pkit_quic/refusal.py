"""Stateless refusal of a new QUIC connection: CONNECTION_CLOSE in an Initial packet.

When the host refuses a handshake for good (the gater's ``allow_accept``, a connection
limit, the host stopping), the client should learn it at once, as a TCP client does
from a reset, not after its dial timeout.  RFC 9000 (10.2.3) lets a server close in an
Initial packet before any handshake state exists; the error is CONNECTION_REFUSED
(0x2).  The packet is built from the client's Initial header alone: Initial keys come
from the client's destination connection id, so no connection state is kept.

Refusals that pass (a full table of *pending* handshakes) send nothing: the client's
retransmission asks again and may get in.  Either way the work per Initial is bounded:
closes are sent at most :data:`RATE` per second per socket (a token bucket), so a
flood of refused Initials costs at most that many key derivations.
"""

from __future__ import annotations

import os

from aioquic.quic.crypto import CryptoPair
from aioquic.quic.packet import QuicErrorCode, QuicFrameType, QuicHeader, QuicPacketType
from aioquic.quic.packet_builder import QuicPacketBuilder

RATE = 100.0
"""Refusal closes per second per socket at most (and the burst allowed)."""
REASON = b"connection refused"


def connection_refused(header: QuicHeader) -> bytes:
    """One datagram: an Initial packet carrying CONNECTION_CLOSE (CONNECTION_REFUSED)
    for the client whose Initial had ``header``.  Smaller than that Initial (at least
    1200 bytes), so it amplifies nothing."""
    version = header.version
    assert version is not None  # a long header (an Initial) always has one
    crypto = CryptoPair()
    crypto.setup_initial(cid=header.destination_cid, is_client=False, version=version)
    builder = QuicPacketBuilder(
        host_cid=os.urandom(8),
        peer_cid=header.source_cid,
        version=version,
        is_client=False,
        max_datagram_size=1200,
    )
    builder.start_packet(QuicPacketType.INITIAL, crypto)
    buf = builder.start_frame(QuicFrameType.TRANSPORT_CLOSE, capacity=1 + 8 + 8 + 8 + len(REASON))
    buf.push_uint_var(QuicErrorCode.CONNECTION_REFUSED)
    buf.push_uint_var(0)  # no frame type caused it
    buf.push_uint_var(len(REASON))
    buf.push_bytes(REASON)
    datagrams, _ = builder.flush()
    return datagrams[0]


class RefusalBudget:
    """A token bucket: :meth:`take` is True at most ``rate`` times per second on
    average, ``rate`` at once after a quiet second."""

    def __init__(self, rate: float = RATE) -> None:
        self.rate = rate
        self._tokens = rate
        self._at: float | None = None

    def take(self, now: float) -> bool:
        if self._at is not None:
            self._tokens = min(self.rate, self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True
