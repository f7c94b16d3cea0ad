"""p2pkit_websocket: the WebSocket transport plugin of p2pkit (see README.md).

The plugin registry finds it through the ``p2pkit`` entry point ``websocket``
(:mod:`p2pkit_websocket.plugin`); applications normally never import this package.

Every public name is imported on first use (PEP 562 ``__getattr__``), so that
importing the package, or its entry-point module, loads neither ``websockets`` nor ssl.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from p2pkit.lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "WsTarget": "p2pkit_websocket.addresses",
    "is_ws": "p2pkit_websocket.addresses",
    "normalise": "p2pkit_websocket.addresses",
    "parse": "p2pkit_websocket.addresses",
    "WsConnection": "p2pkit_websocket.connection",
    "WsOptions": "p2pkit_websocket.options",
    "WsTransport": "p2pkit_websocket.transport",
}

__all__ = ["WsConnection", "WsOptions", "WsTarget", "WsTransport", "is_ws", "normalise", "parse"]

if TYPE_CHECKING:
    from p2pkit_websocket.addresses import WsTarget, is_ws, normalise, parse
    from p2pkit_websocket.connection import WsConnection
    from p2pkit_websocket.options import WsOptions
    from p2pkit_websocket.transport import WsTransport


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
