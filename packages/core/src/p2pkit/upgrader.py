"""The connection upgrader: raw connection -> secured -> muxed.

1. multistream-select the security protocol (our preference order);
2. run its handshake (verifying the remote peer id when we dialed one);
3. take the muxer agreed during the handshake (early muxer negotiation) or
   multistream-select one over the secured channel;
4. start the muxer session, handing it the connection's memory scope (resource
   manager) when the muxer says it accounts memory (``StreamMuxer.accepts_memory_scope``).

The whole upgrade runs under one timeout; on any failure the raw connection is reset
and a typed error raised, so a bad peer costs us one socket and nothing else.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING

from p2pkit.abc import (
    MemoryScope,
    RawConnection,
    SecureConnection,
    SecurityProtocol,
    StreamMuxer,
)
from p2pkit.errors import HandshakeTimeout, NegotiationError
from p2pkit.multistream import select_inbound, select_outbound
from p2pkit.network import MuxedTransportConnection
from p2pkit.timerwheel import coarse_timeout

if TYPE_CHECKING:
    from p2pkit.peer import PeerId


@dataclasses.dataclass(kw_only=True)
class Upgraded(MuxedTransportConnection):
    """What an upgrade produced: a native-looking connection plus the layers below it."""

    raw: RawConnection
    secure: SecureConnection


class Upgrader:
    """Runs the connection path with the configured security protocols and muxers."""

    def __init__(
        self,
        security: Sequence[SecurityProtocol],
        muxers: Sequence[StreamMuxer],
        *,
        timeout: float,
    ) -> None:
        self.security = {s.protocol_id: s for s in security}
        self.security_order = [s.protocol_id for s in security]
        self.muxers = {m.protocol_id: m for m in muxers}
        self.muxer_order = [m.protocol_id for m in muxers]
        self.timeout = timeout

    async def upgrade_outbound(
        self,
        raw: RawConnection,
        remote_peer: PeerId | None,
        *,
        memory: MemoryScope | None = None,
    ) -> Upgraded:
        return await self._run(raw, remote_peer, outbound=True, memory=memory)

    async def upgrade_inbound(
        self, raw: RawConnection, *, memory: MemoryScope | None = None
    ) -> Upgraded:
        return await self._run(raw, None, outbound=False, memory=memory)

    async def _run(
        self,
        raw: RawConnection,
        remote_peer: PeerId | None,
        *,
        outbound: bool,
        memory: MemoryScope | None,
    ) -> Upgraded:
        if not self.security or not self.muxers:
            raw.reset()
            raise NegotiationError(
                "cannot upgrade a raw connection: no security protocol or no muxer configured"
            )
        try:
            async with coarse_timeout(self.timeout):  # (p2pkit.timerwheel: why)
                return await self._steps(raw, remote_peer, outbound, memory)
        except TimeoutError as exc:
            raw.reset()
            if isinstance(exc, HandshakeTimeout):
                raise
            raise HandshakeTimeout(
                f"connection upgrade did not finish in {self.timeout} s"
            ) from exc
        except BaseException:
            raw.reset()
            raise

    async def _steps(
        self,
        raw: RawConnection,
        remote_peer: PeerId | None,
        outbound: bool,
        memory: MemoryScope | None,
    ) -> Upgraded:
        # No per-step timeout here: the whole upgrade is bounded by self.timeout.
        if outbound:
            sec_id = await select_outbound(raw, self.security_order, timeout=None)
            secure = await self.security[sec_id].secure_outbound(raw, remote_peer, self.muxer_order)
        else:
            sec_id = await select_inbound(raw, self.security_order, timeout=None)
            secure = await self.security[sec_id].secure_inbound(raw, self.muxer_order)
        try:
            early = secure.early_muxer
            if early is not None:
                if early not in self.muxers:
                    raise NegotiationError(f"handshake agreed on muxer {early!r}, which we lack")
                mux_id = early
            elif outbound:
                mux_id = await select_outbound(secure, self.muxer_order, timeout=None)
            else:
                mux_id = await select_inbound(secure, self.muxer_order, timeout=None)
            muxer = self.muxers[mux_id]
            if memory is not None and getattr(muxer, "accepts_memory_scope", False):
                muxed = muxer.new_session(secure, is_initiator=outbound, memory=memory)
            else:
                muxed = muxer.new_session(secure, is_initiator=outbound)
        except BaseException:
            secure.reset()
            raise
        return Upgraded(
            raw=raw,
            secure=secure,
            muxed=muxed,
            remote_peer=secure.remote_peer,
            remote_public_key=secure.remote_public_key,
            local_addr=raw.local_addr,
            remote_addr=raw.remote_addr,
            security_protocol=sec_id,
            muxer_protocol=mux_id,
            early_muxer=early is not None,
        )


__all__ = ["Upgraded", "Upgrader"]
