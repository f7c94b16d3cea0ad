"""Entry point module of the ``p2pkit`` group: offers ``noise`` (``/noise``).

Import-light: the Noise implementation (and the ``noise`` cipher library) is imported
only when the factory runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from p2pkit.plugins.spec import Components, PluginSpec, hookimpl
from p2pkit_noise._ids import PROTOCOL_ID
from p2pkit_noise.options import NoiseOptions

if TYPE_CHECKING:
    from p2pkit.abc import SecurityProtocol
    from p2pkit_noise.security import NoiseSecurity


def create(components: Components, options: NoiseOptions) -> NoiseSecurity:
    """Factory: one :class:`NoiseSecurity` bound to the host's identity."""
    from p2pkit_noise.security import NoiseSecurity

    return NoiseSecurity(components.private_key, options, peer_id=components.peer_id)


@hookimpl
def p2pkit_security_protocols() -> list[PluginSpec[SecurityProtocol]]:
    return [
        PluginSpec(
            kind="security",
            name="noise",
            protocol_id=PROTOCOL_ID,
            factory=create,
            options=NoiseOptions,
            priority=100,
            description="Noise XX (X25519, ChaChaPoly, SHA-256) with early muxer negotiation",
        )
    ]
