"""Typed options of the TCP transport: the core's :class:`p2pkit.tcp_socket.TcpOptions`
(shared with ``p2pkit-websocket``), under this package's name.  Import-light: the
plugin module imports it."""

from p2pkit.tcp_socket import TcpOptions

__all__ = ["TcpOptions"]
