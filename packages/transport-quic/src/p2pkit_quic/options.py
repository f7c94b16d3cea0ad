"""Typed options of the QUIC transport (import-light: the plugin module imports this)."""

from __future__ import annotations

import dataclasses

MiB = 1 << 20


@dataclasses.dataclass(frozen=True)
class QuicOptions:
    """Configuration of :class:`~p2pkit_quic.QuicTransport` (``[p2pkit.plugins.quic]``).

    Receive memory per connection is bounded by ``connection_window``: QUIC flow control
    grants the peer credit only for bytes the application has read (plus the window),
    so a peer can never make us buffer more.  ``stream_window`` bounds one stream the
    same way.  On the sending side, ``send_buffer`` bounds what one stream's writer may
    have queued and not yet acknowledged, ``connection_send_buffer`` what a connection's
    writers may have queued and not yet sent, and a stream queues at most
    :data:`~p2pkit_quic.flow.CREDIT_AHEAD` bytes beyond the peer's credit for it: so a
    peer that never reads nor grants credit holds at most ``connection_send_buffer`` of
    ours unsent, whatever the number of streams (see :mod:`p2pkit_quic.flow`).
    """

    stream_window: int = 4 * MiB
    connection_window: int = 16 * MiB
    send_buffer: int = 4 * MiB
    connection_send_buffer: int = 4 * MiB
    max_streams: int = 256
    """Inbound bidirectional streams the peer may have open at once (QUIC MAX_STREAMS,
    raised by one as each inbound stream ends); ``limits.max_inbound_streams_per_conn``
    lowers it (:func:`apply_stream_limit`)."""
    max_handshakes: int = 256
    """Inbound handshakes in progress per listening socket; more Initials are dropped."""
    handshake_timeout: float = 10.0
    """Seconds an inbound handshake may take (a dial uses the host's dial timeout)."""
    idle_timeout: float = 30.0
    """QUIC max_idle_timeout: a connection that hears nothing for this long ends."""
    keep_alive: float = 15.0
    """Send a PING after this many idle seconds (0: never), so NATs keep the mapping;
    at most half the negotiated idle timeout.  15 s as go-libp2p: each keep-alive costs
    a packet built and parsed on both sides, the bulk of an idle connection's CPU."""
    retry: bool = False
    """Answer every new Initial with a stateless Retry (address validation before any
    state is kept; costs one round trip per inbound connection)."""
    retry_above: int = 64
    """With this many inbound handshakes in progress on a socket, new Initials get a
    Retry instead of state (as quic-go under load): a flood from spoofed addresses then
    costs no memory, and real clients one more round trip.  0: never (unless ``retry``)."""
    max_datagram_size: int = 1452
    """Datagram size before the path is known (1452: Ethernet MTU minus IPv6 + UDP)."""
    loopback_datagram_size: int = 65000
    """Datagram size used on loopback paths (whose MTU is 64 KiB) once the handshake is
    done and the peer's ``max_udp_payload_size`` allows it; 0 keeps ``max_datagram_size``."""
    dial_timeout: float = 10.0
    close_timeout: float = 5.0
    """``close()`` waits at most this long for open streams to finish and for what we
    sent to be acknowledged, then aborts the connection (CONNECTION_CLOSE code 1)."""

    def __post_init__(self) -> None:
        for name in (
            "stream_window",
            "connection_window",
            "send_buffer",
            "connection_send_buffer",
            "max_streams",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"quic {name} must be >= 1")
        if self.connection_window < self.stream_window:
            raise ValueError("quic connection_window must be >= stream_window")
        if self.retry_above < 0:
            raise ValueError("quic retry_above must be >= 0")
        if self.max_handshakes < 1:
            raise ValueError("quic max_handshakes must be >= 1")
        for name in ("handshake_timeout", "idle_timeout", "dial_timeout", "close_timeout"):
            if not getattr(self, name) > 0:
                raise ValueError(f"quic {name} must be > 0")
        if self.keep_alive < 0:
            raise ValueError("quic keep_alive must be >= 0")
        if not 1200 <= self.max_datagram_size <= 65527:
            raise ValueError("quic max_datagram_size must be in 1200..65527")
        if self.loopback_datagram_size and not 1200 <= self.loopback_datagram_size <= 65527:
            raise ValueError("quic loopback_datagram_size must be 0 or in 1200..65527")


def apply_memory_limit(options: QuicOptions, limit: int) -> QuicOptions:
    """The spec's memory hook (``limits.max_muxer_memory_per_conn``): bound what one
    connection may buffer unread by ``limit`` bytes.

    ``connection_window`` is that bound (QUIC flow control, enforced by the peer's
    credit); ``stream_window`` shrinks with it when larger.  Raises ValueError below
    64 KiB, where streams could hardly move.
    """
    if limit < 64 * 1024:
        raise ValueError(f"{limit} bytes is below the 64 KiB a QUIC connection needs")
    window = min(options.connection_window, limit)
    return dataclasses.replace(
        options, connection_window=window, stream_window=min(options.stream_window, window)
    )


def apply_stream_limit(options: QuicOptions, limit: int) -> QuicOptions:
    """The spec's stream hook (``limits.max_inbound_streams_per_conn``): grant the peer
    at most ``limit`` concurrent inbound streams.

    QUIC's ``MAX_STREAMS`` credit is that bound, enforced by the peer's stack: a peer
    at the limit waits until one of its streams ends (aioquic raises the credit by one
    per stream it discards) instead of opening a stream the swarm would reset.
    """
    return dataclasses.replace(options, max_streams=min(options.max_streams, limit))
