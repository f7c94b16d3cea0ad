"""p2pkit_tcp: the TCP transport plugin of p2pkit (see README.md).

The plugin registry finds it through the ``p2pkit`` entry point ``tcp``
(:mod:`p2pkit_tcp.plugin`); applications normally never import this package.

Every public name is imported on first use (PEP 562 ``__getattr__``), so that
importing the package, or its entry-point module :mod:`p2pkit_tcp.plugin`, loads no
implementation module (no cipher, no OpenSSL, no asyncio shell).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from p2pkit.lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "TcpTarget": "p2pkit_tcp.addresses",
    "from_sockaddr": "p2pkit_tcp.addresses",
    "is_tcp": "p2pkit_tcp.addresses",
    "parse": "p2pkit_tcp.addresses",
    "TcpConnection": "p2pkit_tcp.connection",
    "TcpOptions": "p2pkit_tcp.options",
    "TcpListener": "p2pkit_tcp.transport",
    "TcpTransport": "p2pkit_tcp.transport",
}

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

if TYPE_CHECKING:
    from p2pkit_tcp.addresses import (
        TcpTarget,
        from_sockaddr,
        is_tcp,
        parse,
    )
    from p2pkit_tcp.connection import TcpConnection
    from p2pkit_tcp.options import TcpOptions
    from p2pkit_tcp.transport import (
        TcpListener,
        TcpTransport,
    )


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
