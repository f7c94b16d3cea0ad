"""One TCP connection: the core's :mod:`p2pkit.tcp_socket` (shared with
``p2pkit-websocket``), under this package's name."""

from p2pkit.tcp_socket import TcpConnection

__all__ = ["TcpConnection"]
