"""Entry point of the ``quic`` plugin (group ``p2pkit``).

Import-light on purpose: the registry imports every plugin module to list what is
installed, so aioquic and the transport are imported only when the factory runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from p2pkit.plugins.spec import Components, PluginSpec, hookimpl
from p2pkit_quic.options import QuicOptions, apply_memory_limit, apply_stream_limit

if TYPE_CHECKING:
    from p2pkit.network import MuxedTransport
    from p2pkit_quic.transport import QuicTransport


def create(components: Components, options: QuicOptions) -> QuicTransport:
    """Factory: one :class:`~p2pkit_quic.QuicTransport` per host (it needs the host key:
    the libp2p certificate binds it)."""
    from p2pkit_quic.transport import QuicTransport

    return QuicTransport(components.private_key, options)


@hookimpl
def p2pkit_transports() -> list[PluginSpec[MuxedTransport]]:
    return [
        PluginSpec(
            kind="transport",
            name="quic",
            factory=create,
            options=QuicOptions,
            priority=90,
            provides=("quic-v1",),
            apply_memory_limit=apply_memory_limit,
            apply_stream_limit=apply_stream_limit,
            description="QUIC v1 over UDP (/ip4, /ip6 + /udp/<port>/quic-v1): TLS 1.3 and "
            "stream muxing built in",
        )
    ]
