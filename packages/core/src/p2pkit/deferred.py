"""Offering a protocol costs nothing until a connection negotiates it.

A default host offers every installed security protocol and muxer, but a connection
uses one of each.  Building them all at host build time imported every handshake
module (OpenSSL for TLS, the Noise library, both muxer shells) whether or not a peer
ever asked for it.  The upgrader needs only a protocol id to offer a protocol in
multistream-select, so the host hands it these stand-ins: each knows its id and runs
the plugin's factory (which imports the implementation) the first time a connection
negotiates it, then forwards to the built object for good.  The host builds its
preferred security protocol and muxer when it starts (:func:`build_now`); the others
(TLS and Mplex beside Noise and Yamux, by default) wait for a peer to pick them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

from p2pkit.abc import (
    MemoryScope,
    MuxedConnection,
    RawConnection,
    SecureConnection,
    SecurityProtocol,
    StreamMuxer,
)
from p2pkit.errors import PluginError

if TYPE_CHECKING:
    from p2pkit.peer import PeerId
    from p2pkit.plugins.spec import Components, PluginSpec

T = TypeVar("T")


class _Deferred(Generic[T]):
    """Builds ``kind`` once, on first use, and checks what the factory returned."""

    def __init__(self, build: Callable[[], Any], kind: type[Any], protocol_id: str) -> None:
        self._build: Callable[[], Any] | None = build
        self._kind = kind
        self._built: T | None = None
        self.protocol_id = protocol_id

    def get(self) -> T:
        """The real object (built now if this is the first connection to need it)."""
        built = self._built
        if built is None:
            assert self._build is not None
            obj = self._build()
            if not isinstance(obj, self._kind):
                raise PluginError(
                    f"plugin for {self.protocol_id!r} built {type(obj).__name__}, "
                    f"not a {self._kind.__name__}"
                )
            if obj.protocol_id != self.protocol_id:
                raise PluginError(
                    f"plugin for {self.protocol_id!r} built one for {obj.protocol_id!r}"
                )
            self._built = built = cast(T, obj)
            self._build = None  # drop the closure (components, options)
        return built

    @property
    def built(self) -> bool:
        """Whether a connection has needed it yet (introspection and tests)."""
        return self._built is not None


class DeferredSecurity(SecurityProtocol):
    """A security protocol built on its first handshake."""

    def __init__(self, protocol_id: str, build: Callable[[], Any]) -> None:
        self.protocol_id = protocol_id
        self.deferred: _Deferred[SecurityProtocol] = _Deferred(build, SecurityProtocol, protocol_id)

    async def secure_outbound(
        self, conn: RawConnection, remote_peer: PeerId | None, muxers: Sequence[str] = ()
    ) -> SecureConnection:
        return await self.deferred.get().secure_outbound(conn, remote_peer, muxers)

    async def secure_inbound(
        self, conn: RawConnection, muxers: Sequence[str] = ()
    ) -> SecureConnection:
        return await self.deferred.get().secure_inbound(conn, muxers)


class DeferredMuxer(StreamMuxer):
    """A muxer built when its first session starts."""

    accepts_memory_scope = True  # passed on only if the built muxer takes it

    def __init__(self, protocol_id: str, build: Callable[[], Any]) -> None:
        self.protocol_id = protocol_id
        self.deferred: _Deferred[StreamMuxer] = _Deferred(build, StreamMuxer, protocol_id)

    def new_session(
        self, conn: SecureConnection, *, is_initiator: bool, memory: MemoryScope | None = None
    ) -> MuxedConnection:
        muxer = self.deferred.get()
        if memory is not None and getattr(muxer, "accepts_memory_scope", False):
            return muxer.new_session(conn, is_initiator=is_initiator, memory=memory)
        return muxer.new_session(conn, is_initiator=is_initiator)


def deferred_security(
    spec: PluginSpec[Any], components: Components, options: Any
) -> SecurityProtocol:
    """``spec``'s security protocol, built on first use (at once if it names no id)."""
    if spec.protocol_id is None:
        built: SecurityProtocol = spec.factory(components, options)
        return built
    return DeferredSecurity(spec.protocol_id, lambda: spec.factory(components, options))


def deferred_muxer(spec: PluginSpec[Any], components: Components, options: Any) -> StreamMuxer:
    """``spec``'s muxer, built when its first session starts (at once if it names no id)."""
    if spec.protocol_id is None:
        built: StreamMuxer = spec.factory(components, options)
        return built
    return DeferredMuxer(spec.protocol_id, lambda: spec.factory(components, options))


def build_now(objs: Iterable[object]) -> None:
    """Build the stand-ins among ``objs`` now (a host builds its preferred security
    protocol and muxer when it starts: their first connection then waits for no import,
    and a listener's memory baseline already holds them)."""
    for obj in objs:
        if isinstance(obj, DeferredSecurity | DeferredMuxer):
            obj.deferred.get()


__all__ = ["DeferredMuxer", "DeferredSecurity", "build_now", "deferred_muxer", "deferred_security"]
