"""p2pkit_quic: the QUIC transport plugin of p2pkit (see README.md).

The plugin registry finds it through the ``p2pkit`` entry point ``quic``
(:mod:`p2pkit_quic.plugin`); applications normally never import this package.

Every public name is imported on first use (PEP 562 ``__getattr__``), so that
importing the package, or its entry-point module, loads neither aioquic nor OpenSSL.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from p2pkit.lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "ALPN": "p2pkit_quic._ids",
    "QuicTarget": "p2pkit_quic.addresses",
    "from_sockaddr": "p2pkit_quic.addresses",
    "is_quic": "p2pkit_quic.addresses",
    "parse": "p2pkit_quic.addresses",
    "QuicOptions": "p2pkit_quic.options",
    "QuicSession": "p2pkit_quic.session",
    "QuicStream": "p2pkit_quic.stream",
    "QuicListener": "p2pkit_quic.transport",
    "QuicTransport": "p2pkit_quic.transport",
}

__all__ = [
    "ALPN",
    "QuicListener",
    "QuicOptions",
    "QuicSession",
    "QuicStream",
    "QuicTarget",
    "QuicTransport",
    "from_sockaddr",
    "is_quic",
    "parse",
]

if TYPE_CHECKING:
    from p2pkit_quic._ids import ALPN
    from p2pkit_quic.addresses import QuicTarget, from_sockaddr, is_quic, parse
    from p2pkit_quic.options import QuicOptions
    from p2pkit_quic.session import QuicSession
    from p2pkit_quic.stream import QuicStream
    from p2pkit_quic.transport import QuicListener, QuicTransport


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
