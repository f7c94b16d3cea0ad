"""The swarm's view of one secured, muxed connection (upgraded or native)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Sequence
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    from multiaddr import Multiaddr

    from p2pkit.abc import MuxedStream, SecureConnection
    from p2pkit.crypto import PublicKey
    from p2pkit.network import MuxedTransportConnection
    from p2pkit.peer import PeerId

Direction = Literal["inbound", "outbound"]


class StreamOpener(Protocol):
    """Opens a stream on a connection and negotiates its protocol
    (:class:`p2pkit.streams.StreamOpener` is the implementation)."""

    def open(
        self, conn: Connection, protocols: Sequence[str] | str, *, lazy: bool | None = None
    ) -> Awaitable[MuxedStream]: ...


class Connection:
    """A secured, muxed connection to one peer, as the swarm tracks it.

    Attributes: ``peer``, ``direction``, ``opened_at`` (monotonic seconds),
    ``remote_addr``/``local_addr``, ``remote_public_key``, ``security_protocol``,
    ``muxer_protocol``, ``early_muxer`` (True when the muxer was agreed inside the
    security handshake), ``tags`` (connection-manager tags: name -> weight), ``secure``
    (the secured channel; None for a transport with built-in security), ``draining``.
    """

    def __init__(
        self, upgraded: MuxedTransportConnection, direction: Direction, opener: StreamOpener
    ) -> None:
        self._opener = opener
        self.upgraded = upgraded
        self.secure: SecureConnection | None = getattr(upgraded, "secure", None)
        self.muxed = upgraded.muxed
        self.peer: PeerId = upgraded.remote_peer
        self.remote_public_key: PublicKey = upgraded.remote_public_key
        self.direction: Direction = direction
        self.opened_at = time.monotonic()
        self.remote_addr: Multiaddr | None = upgraded.remote_addr
        self.local_addr: Multiaddr | None = upgraded.local_addr
        self.security_protocol = upgraded.security_protocol
        self.muxer_protocol = upgraded.muxer_protocol
        self.early_muxer = upgraded.early_muxer
        self.tags: dict[str, int] = {}
        self.draining = False
        """No new streams either way: the peer said it is going away (yamux GoAway) or
        the session stopped accepting.  The swarm closes it once its streams finish
        and no longer hands it out, so the next dial makes a new connection."""

    @property
    def streams(self) -> Sequence[MuxedStream]:
        return self.muxed.streams

    @property
    def is_closed(self) -> bool:
        return self.muxed.is_closed

    @property
    def usable(self) -> bool:
        """Open and not draining: new streams can be opened on it."""
        return not self.draining and not self.muxed.is_closed

    async def new_stream(
        self, protocols: Sequence[str] | str, *, lazy: bool | None = None
    ) -> MuxedStream:
        """Open a stream on this connection and negotiate one of ``protocols``
        (``lazy``: see :meth:`p2pkit.host.Host.new_stream`)."""
        return await self._opener.open(self, protocols, lazy=lazy)

    async def close(self) -> None:
        await self.muxed.close()

    def __repr__(self) -> str:
        return (
            f"<Connection {self.direction} {self.peer} {self.remote_addr} "
            f"{self.security_protocol}+{self.muxer_protocol}>"
        )
