"""Typed options of the TCP transport (import-light: the plugin module imports this)."""

from __future__ import annotations

import dataclasses

from p2pkit.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class TcpOptions:
    """Configuration of :class:`~p2pkit_tcp.TcpTransport`.

    ``dial_timeout``: None (the default) means the caller's: the host passes its
    ``dial_timeout`` to every ``dial``; a number bounds a ``dial(timeout=None)`` (direct
    users); with neither, the kernel's connect timeout applies.
    ``write_high_water``: bytes queued in asyncio's transport before ``write_paused``
    turns True (it turns False again at a quarter of it).  ``read_buffer_size``: the one
    preallocated receive buffer per connection; each socket read takes at most this much.
    ``close_timeout``: how long a graceful ``close()`` waits for queued data to go out
    before aborting the connection.  ``close_linger``: once our data is acknowledged,
    how long ``close()`` keeps draining the socket waiting for the peer's FIN (so a peer
    still sending gets no RST before it has read our data); 0 disables.
    ``pull_buffer_limit``: in pull mode, socket reading pauses while more than this many
    bytes are buffered unread (resumes at a quarter).
    """

    nodelay: bool = True
    dial_timeout: float | None = None
    backlog: int = 128
    write_high_water: int = 1 << 20
    read_buffer_size: int = 1 << 20
    close_timeout: float = 10.0
    close_linger: float = 0.25
    pull_buffer_limit: int = 1 << 20

    def __post_init__(self) -> None:
        if self.dial_timeout is not None and self.dial_timeout <= 0:
            raise ConfigError(f"tcp: dial_timeout must be > 0, got {self.dial_timeout}")
        if self.close_timeout <= 0:
            raise ConfigError(f"tcp: close_timeout must be > 0, got {self.close_timeout}")
        if self.backlog < 1:
            raise ConfigError(f"tcp: backlog must be >= 1, got {self.backlog}")
        if self.write_high_water < 1:
            raise ConfigError(f"tcp: write_high_water must be >= 1, got {self.write_high_water}")
        if self.close_linger < 0:
            raise ConfigError(f"tcp: close_linger must be >= 0, got {self.close_linger}")
        if self.pull_buffer_limit < 1:
            raise ConfigError(f"tcp: pull_buffer_limit must be >= 1, got {self.pull_buffer_limit}")
        if self.read_buffer_size < 1024:
            raise ConfigError(f"tcp: read_buffer_size must be >= 1024, got {self.read_buffer_size}")
