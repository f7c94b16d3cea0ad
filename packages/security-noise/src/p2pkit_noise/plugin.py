"""Entry point module of the ``p2pkit`` group: offers ``noise`` (``/noise``)."""

from __future__ import annotations

from p2pkit.plugins.spec import Components, PluginSpec, hookimpl
from p2pkit_noise.options import NoiseOptions
from p2pkit_noise.security import NoiseSecurity


def create(components: Components, options: NoiseOptions) -> NoiseSecurity:
    """Factory: one :class:`NoiseSecurity` bound to the host's identity."""
    return NoiseSecurity(components.private_key, options, peer_id=components.peer_id)


@hookimpl
def p2pkit_security_protocols() -> list[PluginSpec]:
    return [
        PluginSpec(
            kind="security",
            name="noise",
            protocol_id="/noise",
            factory=create,
            options=NoiseOptions,
            description="Noise XX (X25519, ChaChaPoly, SHA-256) with early muxer negotiation",
        )
    ]
