"""Entry point of the ``websocket`` plugin (group ``p2pkit``).

Import-light on purpose: the registry imports every plugin module to list what is
installed, so the transport (and ``websockets``) is imported only when the factory runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from p2pkit.plugins.spec import Components, PluginSpec, hookimpl
from p2pkit_websocket._ids import ADDRESS_PROTOCOLS
from p2pkit_websocket.options import WsOptions

if TYPE_CHECKING:
    from p2pkit.abc import Transport
    from p2pkit_websocket.transport import WsTransport


def create(components: Components, options: WsOptions) -> WsTransport:
    """Factory: one :class:`~p2pkit_websocket.WsTransport` per host."""
    from p2pkit_websocket.transport import WsTransport

    return WsTransport(options)


@hookimpl
def p2pkit_transports() -> list[PluginSpec[Transport]]:
    return [
        PluginSpec(
            kind="transport",
            name="websocket",
            factory=create,
            options=WsOptions,
            priority=90,
            provides=ADDRESS_PROTOCOLS,
            description="WebSocket over TCP (/tcp/<port>/ws, /tls/ws; legacy /wss)",
        )
    ]
