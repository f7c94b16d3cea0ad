"""Typed options of the WebSocket transport (import-light: the plugin module imports this)."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from p2pkit.errors import ConfigError
from p2pkit.tcp_socket import TcpOptions


@dataclasses.dataclass(frozen=True)
class WsOptions(TcpOptions):
    """Configuration of :class:`~p2pkit_websocket.WsTransport`.

    The TCP options (``nodelay``, buffer sizes, close timeout and linger, ...) apply to
    the socket underneath; see :class:`~p2pkit.tcp_socket.TcpOptions`.  Our own:

    ``handshake_timeout``: seconds an accepted socket gets to complete the HTTP upgrade
    (and TLS) before it is dropped.  ``max_message_size``: the largest binary message
    accepted (larger: close 1009); payloads are streamed, so this bounds nothing in
    memory, it is a policy.  ``max_frame_size``: we send each write as binary messages
    of at most this many bytes (1 MiB: trio-websocket's default limit, which py-libp2p
    runs on; each write is then usually one message, so frame boundaries fall between
    security-layer records).
    ``max_pings_per_second``: pings answered per second; a peer that sends more than
    ten times that in a second is closed (1008).  ``cert_file`` / ``key_file``: PEM
    certificate chain and key for ``/tls/ws`` listeners.  ``ca_file``: PEM CA bundle
    that ``/tls/ws`` dials trust (None: the system's CAs).
    """

    handshake_timeout: float = 10.0
    max_message_size: int = 4 << 20
    max_frame_size: int = 1 << 20
    max_pings_per_second: int = 100
    cert_file: str | None = None
    key_file: str | None = None
    ca_file: str | None = None

    _label: ClassVar[str] = "websocket"

    def __post_init__(self) -> None:
        super().__post_init__()
        checks = [
            ("handshake_timeout", self.handshake_timeout > 0, "> 0"),
            ("max_message_size", self.max_message_size >= 1024, ">= 1024"),
            ("max_frame_size", 1024 <= self.max_frame_size, ">= 1024"),
            ("max_pings_per_second", self.max_pings_per_second >= 1, ">= 1"),
        ]
        for name, ok, rule in checks:
            if not ok:
                value = getattr(self, name)
                raise ConfigError(f"{self._label}: {name} must be {rule}, got {value}")
        if (self.cert_file is None) != (self.key_file is None):
            raise ConfigError(f"{self._label}: cert_file and key_file go together")
