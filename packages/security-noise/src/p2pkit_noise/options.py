"""Typed configuration of the Noise plugin (``[p2pkit.plugins.noise]`` in p2pkit.toml)."""

from __future__ import annotations

import dataclasses

from p2pkit.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class NoiseOptions:
    """Options of :class:`~p2pkit_noise.NoiseSecurity`.

    ``handshake_timeout``: None (the default) runs no timer of its own: in a host, the
    upgrader's ``handshake_timeout`` bounds the whole upgrade, Noise included.  A number
    bounds the Noise handshake alone (both roles; for direct users without an upgrader):
    on expiry the connection is closed and :class:`~p2pkit.errors.HandshakeTimeout`
    raised.

    ``max_inbound_handshakes``: inbound handshakes allowed in progress at once; a new
    inbound connection beyond it is closed at once (logged) so a flood of half-open
    handshakes cannot eat memory and CPU.  None (the default): no cap of its own; in a
    host, ``limits.max_pending_inbound`` already caps inbound connections still
    upgrading, before any crypto.

    ``early_muxer_negotiation``: send our muxer list in the handshake (libp2p
    ``connections/inlined-muxer-negotiation.md``).  False sends no list, so the muxer
    is always negotiated with multistream-select afterwards.
    """

    handshake_timeout: float | None = None
    max_inbound_handshakes: int | None = None
    early_muxer_negotiation: bool = True

    def __post_init__(self) -> None:
        if self.handshake_timeout is not None and not self.handshake_timeout > 0:
            raise ConfigError(f"noise: handshake_timeout must be > 0, got {self.handshake_timeout}")
        if self.max_inbound_handshakes is not None and self.max_inbound_handshakes < 1:
            raise ConfigError(
                f"noise: max_inbound_handshakes must be >= 1, got {self.max_inbound_handshakes}"
            )
