"""Entry point module of the ``p2pkit`` plugin group: offers ``tls`` (``/tls/1.0.0``).

Import-light: OpenSSL (pyOpenSSL, cryptography's x509) is imported only when the
factory runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from p2pkit.plugins.spec import Components, PluginSpec, hookimpl
from p2pkit_tls._ids import PROTOCOL_ID
from p2pkit_tls.options import TlsOptions

if TYPE_CHECKING:
    from p2pkit.abc import SecurityProtocol
    from p2pkit_tls.protocol import TlsSecurity

__all__ = ["create", "p2pkit_security_protocols"]


def create(components: Components, options: TlsOptions) -> TlsSecurity:
    """Factory: a TlsSecurity for the host's identity key."""
    from p2pkit_tls.protocol import TlsSecurity

    return TlsSecurity(components.private_key, options)


@hookimpl
def p2pkit_security_protocols() -> list[PluginSpec[SecurityProtocol]]:
    return [
        PluginSpec(
            kind="security",
            name="tls",
            protocol_id=PROTOCOL_ID,
            factory=create,
            options=TlsOptions,
            priority=50,
            description="libp2p TLS 1.3 handshake (mutual auth, ALPN early muxer negotiation)",
        )
    ]
