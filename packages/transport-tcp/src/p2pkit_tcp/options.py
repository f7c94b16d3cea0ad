"""Typed options of the TCP transport (import-light: the plugin module imports this)."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from p2pkit.stream_socket import StreamSocketOptions


@dataclasses.dataclass(frozen=True)
class TcpOptions(StreamSocketOptions):
    """Configuration of :class:`~p2pkit_tcp.TcpTransport`.

    ``nodelay``: set ``TCP_NODELAY`` (no Nagle delay for small writes).  The other
    fields are the core's :class:`~p2pkit.stream_socket.StreamSocketOptions` (write
    high-water mark, receive buffer size, close timeout and linger, pull buffer limit,
    dial timeout, listen backlog); see there.
    """

    nodelay: bool = True

    _label: ClassVar[str] = "tcp"
