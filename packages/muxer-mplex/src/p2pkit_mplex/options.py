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
    """Bytes received on one stream and not yet read by the application.  A stream
    whose reader falls further behind is reset (as go-mplex does), so one slow
    reader never stalls the session or grows memory without bound."""

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

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"mplex option {field.name} must be a positive int: {value!r}")
        if self.max_stream_buffer < self.max_message_size:
            # A single full-size message must fit, or a fast writer is reset at once.
            raise ConfigError("mplex max_stream_buffer must be >= max_message_size")
