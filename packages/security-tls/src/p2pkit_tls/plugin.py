"""Entry point module of the ``p2pkit`` plugin group: offers ``tls`` (``/tls/1.0.0``)."""

from __future__ import annotations

from p2pkit.plugins.spec import Components, PluginSpec, hookimpl
from p2pkit_tls.options import TlsOptions
from p2pkit_tls.protocol import PROTOCOL_ID, TlsSecurity

__all__ = ["create", "p2pkit_security_protocols"]


def create(components: Components, options: TlsOptions | None = None) -> TlsSecurity:
    """Factory: a TlsSecurity for the host's identity key."""
    return TlsSecurity(components.private_key, options)


@hookimpl
def p2pkit_security_protocols() -> list[PluginSpec]:
    return [
        PluginSpec(
            kind="security",
            name="tls",
            protocol_id=PROTOCOL_ID,
            factory=create,
            options=TlsOptions,
            description="libp2p TLS 1.3 handshake (mutual auth, ALPN early muxer negotiation)",
        )
    ]
