"""Entry point of the ``tcp`` plugin (group ``p2pkit``).

Import-light on purpose: the registry imports every plugin module to list what is
installed, so the transport itself is imported only when the factory runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from p2pkit.plugins.spec import Components, PluginSpec, hookimpl
from p2pkit_tcp.options import TcpOptions

if TYPE_CHECKING:
    from p2pkit_tcp.transport import TcpTransport


def _factory(components: Components, options: TcpOptions) -> TcpTransport:
    from p2pkit_tcp.transport import TcpTransport

    return TcpTransport(options)


@hookimpl
def p2pkit_transports() -> list[PluginSpec]:
    return [
        PluginSpec(
            kind="transport",
            name="tcp",
            factory=_factory,
            options=TcpOptions,
            description="TCP over IPv4/IPv6 (/ip4, /ip6, /dns, /dns4, /dns6 + /tcp)",
        )
    ]
