"""Typed options of the TLS plugin (validated by the host before anything starts)."""

from __future__ import annotations

import dataclasses

__all__ = ["TlsOptions"]


@dataclasses.dataclass(frozen=True)
class TlsOptions:
    """Configuration of :class:`~p2pkit_tls.TlsSecurity`.

    ``handshake_timeout``: None (the default) runs no timer of its own: in a host, the
    upgrader's ``handshake_timeout`` bounds the whole upgrade, TLS included.  A number
    bounds the TLS handshake alone (HandshakeTimeout after; for direct users).
    ``certificate_lifetime``: validity of our self-signed certificate in seconds (the
    certificate is generated once per host and renewed an hour before it expires;
    go-libp2p and js-libp2p use ~100 years).
    """

    handshake_timeout: float | None = None
    certificate_lifetime: float = 100 * 365 * 24 * 3600.0

    def __post_init__(self) -> None:
        if self.handshake_timeout is not None and not self.handshake_timeout > 0:
            raise ValueError("handshake_timeout must be > 0")
        if not self.certificate_lifetime > 2 * 3600:
            raise ValueError("certificate_lifetime must be more than two hours")
