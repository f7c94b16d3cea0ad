"""Typed configuration of the mplex plugin (validated before anything opens a socket)."""

from __future__ import annotations

import dataclasses

from p2pkit.errors import ConfigError
from p2pkit_mplex.frames import MAX_MESSAGE_SIZE


@dataclasses.dataclass(frozen=True)
class MplexOptions:
    """Limits of one mplex session.

    mplex has no flow control, so these bounds are the only thing that keeps a fast
    or hostile peer from growing our memory.
    """

    max_stream_buffer: int = 4 << 20
    """Bytes received on one stream and not yet read by the application.  When a
    stream's reader falls further behind, the session stops reading the connection
    (TCP backpressure slows the sender) for up to ``slow_reader_timeout`` seconds; if
    the reader has not caught up by then, that stream is reset, as go-mplex does.
    Memory per stream never exceeds twice this bound (a hard limit that resets at
    once, for channels that keep delivering after being paused)."""

    slow_reader_timeout: float = 5.0
    """Seconds the connection may stay paused for one slow reader before its stream
    is reset (go-mplex: 5 s).  0 resets at ``max_stream_buffer`` without pausing, so
    one slow reader never delays the other streams (but a fast writer's stream is
    reset as soon as its reader falls behind)."""

    max_streams: int = 1000
    """Concurrent streams per direction.  Inbound streams beyond it are reset at once;
    ``open_stream`` beyond it raises ResourceLimitExceeded."""

    max_message_size: int = MAX_MESSAGE_SIZE
    """Largest frame payload we send and accept.  A larger incoming frame is a
    protocol error that closes the connection.  go and js use 1 MiB: do not raise it
    when talking to them (js kills the connection on a larger message)."""

    max_unknown_frames: int = 1000
    """Frames naming a stream that never existed, tolerated per session before the
    connection is closed as hostile.  Late frames for streams we closed or reset do
    not count (they are normal after a reset)."""

    max_blocked_control_frames: int = 1024
    """Frames the session sends on its own in reply to the peer (resets of refused or
    overflowing streams) while the peer does not read what we send (our channel's
    ``write_paused``).  Beyond it the peer is flooding and the connection is aborted
    with :class:`~p2pkit_mplex.session.MplexControlFlood`; the counter restarts each
    time the peer reads again.  So such replies grow our output queue by a bounded
    amount beyond the channel's high-water mark."""

    early_outbound_streams: int = 10
    """Streams ``open_stream`` opens before the peer has sent anything on the connection;
    more wait for its first frame.  js-libp2p resets every stream of a connection when
    more than 10 arrive before its upgrader listens (``maxEarlyStreams``); mplex has no
    ACK, and the peer's first frame shows it listens.  Costs at most one round trip,
    once per connection, and only to a dialer opening more than 10 streams at once."""

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.name == "slow_reader_timeout":
                if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
                    raise ConfigError(f"mplex option {field.name} must be >= 0: {value!r}")
            elif not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"mplex option {field.name} must be a positive int: {value!r}")
        if self.max_stream_buffer < self.max_message_size:
            # A single full-size message must fit, or a fast writer is reset at once.
            raise ConfigError("mplex max_stream_buffer must be >= max_message_size")

    @property
    def hard_stream_buffer(self) -> int:
        """Unread bytes per stream at which the stream is reset without waiting."""
        if self.slow_reader_timeout > 0:
            return 2 * self.max_stream_buffer
        return self.max_stream_buffer


def apply_memory_limit(options: MplexOptions, limit: int) -> MplexOptions:
    """The spec's memory hook: bound the session's receive memory by ``limit`` bytes.

    mplex has no flow control: memory is at most ``max_streams * max_stream_buffer``,
    so the number of streams is lowered to fit.  Raises ConfigError when one stream's
    buffer alone exceeds ``limit``.
    """
    per_stream = options.max_stream_buffer
    if per_stream > limit:
        raise ConfigError(
            f"limits.max_muxer_memory_per_conn={limit} is below mplex's "
            f"max_stream_buffer={per_stream}"
        )
    return dataclasses.replace(options, max_streams=min(options.max_streams, limit // per_stream))
