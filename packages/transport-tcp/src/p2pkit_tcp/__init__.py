"""p2pkit_tcp: the TCP transport plugin of p2pkit (see README.md).

The plugin registry finds it through the ``p2pkit`` entry point ``tcp``
(:mod:`p2pkit_tcp.plugin`); applications normally never import this package.
"""

from p2pkit_tcp.addresses import TcpTarget, from_sockaddr, is_tcp, parse
from p2pkit_tcp.connection import TcpConnection
from p2pkit_tcp.options import TcpOptions
from p2pkit_tcp.transport import TcpListener, TcpTransport

__all__ = [
    "TcpConnection",
    "TcpListener",
    "TcpOptions",
    "TcpTarget",
    "TcpTransport",
    "from_sockaddr",
    "is_tcp",
    "parse",
]
