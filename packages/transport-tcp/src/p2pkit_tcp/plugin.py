"""Entry point of the ``tcp`` plugin (group ``p2pkit``).

Import-light on purpose: the registry imports every plugin module to list what is
installed, so the transport itself is imported only when the factory runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from p2pkit.plugins.spec import Components, PluginSpec, hookimpl
from p2pkit_tcp.options import TcpOptions

if TYPE_CHECKING:
    from p2pkit.abc import Transport
    from p2pkit_tcp.transport import TcpTransport


def create(components: Components, options: TcpOptions) -> TcpTransport:
    """Factory: one :class:`~p2pkit_tcp.TcpTransport` per host."""
    from p2pkit_tcp.transport import TcpTransport

    return TcpTransport(options)


@hookimpl
def p2pkit_transports() -> list[PluginSpec[Transport]]:
    return [
        PluginSpec(
            kind="transport",
            name="tcp",
            factory=create,
            options=TcpOptions,
            priority=100,
            provides=("tcp",),
            description="TCP over IPv4/IPv6 (/ip4, /ip6, /dns, /dns4, /dns6 + /tcp)",
        )
    ]
