"""One TCP connection: the core's stream-socket connection plus what is TCP's own.

In the core, beside :mod:`p2pkit.tcp_addrs`, because ``p2pkit-tcp`` and
``p2pkit-websocket`` both build on it and no plugin imports another.

Everything about the data path (receive buffer, pull/push modes, write gate, graceful
close, reset) is :class:`p2pkit.stream_socket.StreamSocketConnection`.  TCP adds:
socket addresses as ``/ip4|ip6/.../tcp/<port>`` multiaddrs, ``TCP_NODELAY``, and on
Linux the kernel's count of unacknowledged bytes (``SIOCOUTQ``), so that ``close()``
waits until the peer has our data before closing the socket.
"""

from __future__ import annotations

import dataclasses
import socket
import struct
import sys
from typing import TYPE_CHECKING, Any, ClassVar

from p2pkit.stream_socket import StreamSocketConnection, StreamSocketOptions
from p2pkit.tcp_addrs import from_sockaddr

if TYPE_CHECKING:
    from multiaddr import Multiaddr

try:  # Linux: unacknowledged bytes in a socket's send queue (SIOCOUTQ == TIOCOUTQ)
    import fcntl
    import termios

    _SIOCOUTQ: int | None = termios.TIOCOUTQ if sys.platform == "linux" else None
except ImportError:  # pragma: no cover - Windows
    _SIOCOUTQ = None


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


class TcpConnection(StreamSocketConnection):
    """A raw TCP connection (see the module docstring).

    Built by :class:`~p2pkit_tcp.TcpTransport`; not constructed by applications.
    """

    transport_name = "tcp"

    def __init__(self, options: TcpOptions, *, is_initiator: bool) -> None:
        super().__init__(options, is_initiator=is_initiator)
        self._nodelay = options.nodelay

    def _to_multiaddr(self, sockaddr: Any) -> Multiaddr | None:
        return from_sockaddr(sockaddr)

    def _setup_socket(self, sock: Any) -> None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1 if self._nodelay else 0)

    def _unsent_bytes(self) -> int:
        """Bytes the kernel still holds unacknowledged (Linux SIOCOUTQ; 0 elsewhere)."""
        sock = self._socket()
        if _SIOCOUTQ is None or sock is None:
            return 0
        try:
            raw = fcntl.ioctl(sock.fileno(), _SIOCOUTQ, b"\0\0\0\0")
        except OSError:
            return 0
        return int(struct.unpack("i", raw)[0])
