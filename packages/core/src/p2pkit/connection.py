"""The host-level view of one upgraded connection."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from multiaddr import Multiaddr

    from p2pkit.abc import MuxedStream
    from p2pkit.host import Host
    from p2pkit.peer import PeerId
    from p2pkit.upgrader import Upgraded

Direction = Literal["inbound", "outbound"]


class Connection:
    """A secured, muxed connection to one peer, as the host tracks it.

    Attributes: ``peer``, ``direction``, ``opened_at`` (monotonic seconds),
    ``remote_addr``/``local_addr``, ``security_protocol``, ``muxer_protocol``,
    ``early_muxer`` (True when the muxer was agreed inside the security handshake),
    ``tags`` (connection-manager tags: name -> weight).
    """

    def __init__(self, host: Host, upgraded: Upgraded, direction: Direction) -> None:
        self._host = host
        self.upgraded = upgraded
        self.secure = upgraded.secure
        self.muxed = upgraded.muxed
        self.peer: PeerId = upgraded.secure.remote_peer
        self.direction: Direction = direction
        self.opened_at = time.monotonic()
        self.remote_addr: Multiaddr | None = upgraded.raw.remote_addr
        self.local_addr: Multiaddr | None = upgraded.raw.local_addr
        self.security_protocol = upgraded.security_protocol
        self.muxer_protocol = upgraded.muxer_protocol
        self.early_muxer = upgraded.early_muxer
        self.tags: dict[str, int] = {}

    @property
    def streams(self) -> Sequence[MuxedStream]:
        return self.muxed.streams

    @property
    def is_closed(self) -> bool:
        return self.muxed.is_closed

    async def new_stream(
        self, protocols: Sequence[str] | str, *, lazy: bool | None = None
    ) -> MuxedStream:
        """Open a stream on this connection and negotiate one of ``protocols``
        (``lazy``: see :meth:`p2pkit.host.Host.new_stream`)."""
        return await self._host._open_stream_on(self, protocols, lazy=lazy)

    async def close(self) -> None:
        await self.muxed.close()

    def __repr__(self) -> str:
        return (
            f"<Connection {self.direction} {self.peer} {self.remote_addr} "
            f"{self.security_protocol}+{self.muxer_protocol}>"
        )
