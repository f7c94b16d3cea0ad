"""Typed configuration of the yamux plugin (validated before any socket opens)."""

from __future__ import annotations

import dataclasses

from p2pkit.errors import ConfigError

KiB = 1024
MiB = 1024 * KiB

#: The window every stream starts with, both ways (spec: 256 KiB; never negotiated).
INITIAL_WINDOW = 256 * KiB


@dataclasses.dataclass(frozen=True)
class YamuxOptions:
    """Knobs of a yamux session.

    The defaults are what go-yamux / js-libp2p-yamux use, so that a p2pkit peer behaves
    like the peers it talks to (see the package README for the reasoning of each one).
    """

    initial_window: int = INITIAL_WINDOW
    """Receive window granted to every new stream.  Values above 256 KiB are announced
    as extra window on the SYN / ACK frame (the spec's base window is always 256 KiB)."""
    max_stream_window: int = 16 * MiB
    """Upper bound of auto-tuning: a stream's receive window doubles up to this."""
    max_session_receive_buffer: int = 256 * MiB
    """Bound on the sum of all stream receive windows of a session (what the peer may
    make us buffer).  Window growth beyond it is refused, and so are inbound streams
    whose initial window would not fit (answered RST).  Streams we open always get
    their ``initial_window`` (the spec promises 256 KiB), even beyond the bound."""
    accept_backlog: int = 256
    """Inbound streams waiting for ``accept_stream``; SYNs beyond it are answered RST."""
    max_outbound_unacked: int = 256
    """Outbound SYNs not yet ACKed by the peer; ``open_stream`` waits beyond it."""
    early_outbound_unacked: int = 10
    """The same bound until the peer has ACKed one of our streams.  js-libp2p aborts the
    whole connection when more than 10 streams arrive before its upgrader listens for
    them (``maxEarlyStreams``), and it ACKs none of them before then; its first ACK
    shows it listens.  Costs at most one round trip, once per connection, and only to
    an application that opens more than this many streams at once on a new one."""
    max_streams: int = 1000
    """Inbound streams open at once; SYNs beyond it are answered RST."""
    max_frame_size: int = 1 * MiB
    """Largest Data payload we send in one frame (never more than the peer's window).

    1 MiB because rust-yamux (rust-libp2p) rejects Data frames above 1 MiB
    (``MAX_FRAME_BODY_LEN``) and kills the connection; go and js accept frames as large
    as the window.  Per-frame cost at 1 MiB is negligible (a 12-byte header)."""
    keepalive_interval: float = 30.0
    """Seconds between keepalive pings (0 = off).  Each pong also refreshes the RTT."""
    keepalive_timeout: float = 10.0
    """A keepalive ping not answered within this many seconds ends the session."""
    ping_on_start: bool = True
    """Send one ping right after the session starts (like js) to measure the RTT that
    window auto-tuning needs."""
    max_blocked_control_frames: int = 1024
    """Control frames (pings, SYNs we refuse) the peer may send while it does not read
    what we send (our channel's ``write_paused``).  Meanwhile ping replies are dropped,
    as go-yamux does when its send queue is full; beyond this bound the session ends
    with :class:`~p2pkit_yamux.errors.YamuxControlFlood`.  The counter restarts each
    time the peer reads again.  So our output queue grows by at most this many 12-byte
    replies beyond the channel's high-water mark."""
    close_timeout: float = 5.0
    """``close()`` waits at most this long for open streams to finish."""
    stream_close_timeout: float = 300.0
    """A stream we closed both ways (``close()``) waits this long for the peer's FIN,
    then is reset and forgotten (go-yamux's ``StreamCloseTimeout``, 5 minutes): a peer
    that never finishes its streams must not make us keep them forever.  0 = wait."""
    autotune_rtt_floor: float = 0.002
    """Smallest RTT auto-tuning assumes (seconds).  A window doubles when half of it
    was consumed within two RTTs; the RTT measured by an idle ping on a fast local path
    is tens of microseconds, far below the real round trip of a window update under
    load (both event loops' delay), so without a floor a stream behind Noise never
    grows its window.  go-yamux and js-libp2p-yamux use 4 x RTT for the same reason."""

    def __post_init__(self) -> None:
        if self.initial_window < INITIAL_WINDOW:
            raise ConfigError(f"yamux initial_window must be >= {INITIAL_WINDOW} (spec)")
        if self.initial_window >= 1 << 32:
            raise ConfigError("yamux initial_window must fit in 32 bits")
        if not self.initial_window <= self.max_stream_window < 1 << 32:
            raise ConfigError("yamux max_stream_window must be in [initial_window, 2**32)")
        if self.max_session_receive_buffer < self.initial_window:
            raise ConfigError("yamux max_session_receive_buffer must be >= initial_window")
        for name in (
            "accept_backlog",
            "max_outbound_unacked",
            "early_outbound_unacked",
            "max_streams",
            "max_frame_size",
            "max_blocked_control_frames",
        ):
            if getattr(self, name) < 1:
                raise ConfigError(f"yamux {name} must be >= 1")
        if self.keepalive_interval < 0 or self.keepalive_timeout <= 0:
            raise ConfigError("yamux keepalive_interval must be >= 0, keepalive_timeout > 0")
        if self.close_timeout < 0 or self.stream_close_timeout < 0:
            raise ConfigError("yamux close_timeout and stream_close_timeout must be >= 0")
        if self.autotune_rtt_floor < 0:
            raise ConfigError("yamux autotune_rtt_floor must be >= 0")


def apply_memory_limit(options: YamuxOptions, limit: int) -> YamuxOptions:
    """The spec's memory hook: bound the session's receive memory by ``limit`` bytes.

    ``max_session_receive_buffer`` bounds the sum of all stream windows, enforced by
    the session itself (no per-byte work elsewhere).  Raises ConfigError when
    ``limit`` is below ``initial_window`` (what every stream is promised).
    """
    value = min(options.max_session_receive_buffer, limit)
    return dataclasses.replace(options, max_session_receive_buffer=value)
