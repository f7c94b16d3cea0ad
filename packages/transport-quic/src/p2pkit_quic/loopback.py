"""Large datagrams and no pacing once a connection's path is known to be loopback.

A mixin of :class:`~p2pkit_quic.machine.Libp2pQuicConnection`, kept apart so each
module has one job.  The session calls :meth:`LoopbackPath.set_datagram_size` once the
handshake is confirmed on a loopback path (``QuicOptions.loopback_datagram_size``):
aioquic's packet path costs about the same per datagram whatever its size, so 65000-byte
datagrams move ~45 times fewer packets for the same bytes (the QUIC README's figures).
"""

from __future__ import annotations

from typing import Any

from aioquic.quic.recovery import QuicPacketPacer

DEFAULT_MAX_UDP_PAYLOAD = 65527
"""``max_udp_payload_size`` of a peer that does not send the transport parameter."""


class LoopbackPath:
    """See the module docstring."""

    _max_datagram_size: int
    _loss: Any
    peer_max_udp_payload_size: int
    """The peer's ``max_udp_payload_size`` transport parameter (a slot of the connection:
    :data:`DEFAULT_MAX_UDP_PAYLOAD` until the peer's transport parameters say)."""

    def set_datagram_size(self, size: int) -> None:
        """Use ``size``-byte datagrams from now on (path known to carry them)."""
        size = min(size, self.peer_max_udp_payload_size)
        if size <= self._max_datagram_size:
            return
        self._max_datagram_size = size
        loss = self._loss
        # No pacing on loopback (the only path this is called for): pacing spreads
        # bursts so a bottleneck link's queue does not overflow (RFC 9002, 7.7), and
        # loopback has none; the congestion window still bounds what is in flight.
        # aioquic's pacer charges every packet as a full datagram: with 65000-byte
        # datagrams and the initial window, a 40-byte packet after the handshake waited
        # ~4.5 smoothed RTTs (5 ms measured) for its turn.
        loss._pacer = UNPACED
        cc = loss._cc
        if hasattr(cc, "_max_datagram_size"):
            cc._max_datagram_size = size


class _Unpaced(QuicPacketPacer):
    """A pacer that never holds a packet back (see ``set_datagram_size``); it keeps no
    state, so every connection shares :data:`UNPACED`."""

    def next_send_time(self, now: float) -> float | None:  # type: ignore[override]
        return None

    def update_after_send(self, now: float) -> None:
        pass

    def update_rate(self, congestion_window: int, smoothed_rtt: float) -> None:
        pass


UNPACED = _Unpaced(max_datagram_size=65527)
