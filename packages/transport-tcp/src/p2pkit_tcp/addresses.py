"""Multiaddr <-> socket address conversion for TCP: the core's :mod:`p2pkit.tcp_addrs`
(shared with ``p2pkit-websocket``), under this package's names."""

from p2pkit.tcp_addrs import TcpTarget, from_sockaddr, is_tcp, parse

__all__ = ["TcpTarget", "from_sockaddr", "is_tcp", "parse"]
