"""Typed configuration of the prometheus plugin (``[p2pkit.plugins.prometheus]``)."""

from __future__ import annotations

import dataclasses


def split_address(address: str) -> tuple[str, int]:
    """``"127.0.0.1:9464"`` / ``"[::1]:9464"`` -> (host, port); ValueError if malformed."""
    host, sep, port_text = address.rpartition(":")
    if not sep or not host or not port_text.isdigit():
        raise ValueError(f"metrics address {address!r} is not host:port (e.g. 127.0.0.1:9464)")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    port = int(port_text)
    if port > 65535:
        raise ValueError(f"metrics address {address!r}: port out of range")
    return host, port


@dataclasses.dataclass(frozen=True)
class PrometheusOptions:
    address: str = "127.0.0.1:9464"
    """``host:port`` the HTTP endpoint binds (port 0: any free port, see ``endpoint``).
    Loopback by default: exposing it is a deliberate choice."""
    path: str = "/metrics"
    """URL path of the exposition (other paths answer 404)."""

    def __post_init__(self) -> None:
        split_address(self.address)
        if not self.path.startswith("/"):
            raise ValueError(f"metrics path {self.path!r} must start with '/'")


__all__ = ["PrometheusOptions", "split_address"]
