"""Streams on a connection: protocol negotiation both ways and handler routing.

:class:`StreamOpener` opens an outbound stream and multistream-selects its protocol
(optionally lazily, :class:`LazyMuxedStream`); :class:`StreamRouter` negotiates inbound
streams against the registered handlers and runs the chosen handler.  Both emit the
stream events on the host's event bus.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from p2pkit.abc import MuxedStream, StreamHandler
from p2pkit.events import ClosedStream, EventBus, OpenedStream
from p2pkit.limits import ResourceLimits, check_stream
from p2pkit.logs import RepeatLimiter, peer_extra, short_peer
from p2pkit.multistream import select_inbound, select_outbound, select_outbound_lazy
from p2pkit.multistream.aio import LazyStream
from p2pkit.timerwheel import coarse_timeout

if TYPE_CHECKING:
    from p2pkit.connection import Connection

log = logging.getLogger(__name__)

#: Called with each stream whose protocol was agreed, and that protocol (metrics count
#: its bytes, p2pkit.host_metrics); None, the default, costs nothing.
StreamHook = Callable[[MuxedStream, str], None]


class StreamOpener:
    """Opens outbound streams: per-connection stream limit, muxer slot, negotiation."""

    def __init__(
        self,
        limits: ResourceLimits,
        events: EventBus,
        *,
        negotiation_timeout: float,
        lazy_negotiation: bool,
    ) -> None:
        self.limits = limits
        self.events = events
        self.negotiation_timeout = negotiation_timeout
        self.lazy_negotiation = lazy_negotiation
        self.stream_hook: StreamHook | None = None

    async def open(
        self, conn: Connection, protocols: Sequence[str] | str, *, lazy: bool | None = None
    ) -> MuxedStream:
        if isinstance(protocols, str):
            protocols = [protocols]
        if not protocols:
            raise ValueError("new_stream needs at least one protocol id")
        limit = self.limits.max_outbound_streams_per_conn
        if limit is not None:
            n = sum(1 for s in conn.streams if s.is_initiator)
            refusal = check_stream(limit, n, "outbound")
            if refusal is not None:
                log.info(
                    "not opening a stream to %s: %s",
                    short_peer(conn.peer),
                    refusal,
                    extra=peer_extra(conn.peer),
                )
                raise refusal
        # The muxer may make us wait for a free slot (yamux: the peer's ACKs): bounded
        # like the negotiation that follows.
        async with coarse_timeout(self.negotiation_timeout):  # (p2pkit.timerwheel: why)
            stream = await conn.muxed.open_stream()
        try:
            if lazy is None:
                lazy = self.lazy_negotiation
            if len(protocols) == 1 and lazy:
                pending = await select_outbound_lazy(
                    stream, protocols[0], timeout=self.negotiation_timeout
                )
                negotiated: MuxedStream = LazyMuxedStream(pending, stream)
                protocol = protocols[0]
            else:
                protocol = await select_outbound(
                    stream, list(protocols), timeout=self.negotiation_timeout
                )
                negotiated = stream
        except BaseException:
            stream.reset()
            raise
        stream.protocol = protocol
        negotiated.protocol = protocol
        if self.stream_hook is not None:
            self.stream_hook(negotiated, protocol)
        self.events.emit(OpenedStream(conn.peer, protocol, stream.stream_id, False))
        return negotiated


class StreamRouter:
    """Protocol id -> handler table; negotiates and runs inbound streams.

    ``on_change()`` is called whenever the set of protocols changes (identify push).
    """

    def __init__(
        self, events: EventBus, *, negotiation_timeout: float, on_change: Callable[[], None]
    ) -> None:
        # Lines a peer can trigger again and again are collapsed (p2pkit.logs).
        self._repeats = RepeatLimiter()
        self.events = events
        self.negotiation_timeout = negotiation_timeout
        self._on_change = on_change
        self._handlers: dict[str, StreamHandler] = {}
        self._matchers: list[tuple[str, Callable[[str], bool], StreamHandler]] = []
        # Inbound streams whose handler is running -> their connection (connection_of).
        self.handled: dict[MuxedStream, Connection] = {}
        self.stream_hook: StreamHook | None = None

    def set_handler(
        self, protocol_id: str, handler: StreamHandler, match: Callable[[str], bool] | None
    ) -> None:
        if match is None:
            self._handlers[protocol_id] = handler
        else:
            self._matchers = [m for m in self._matchers if m[0] != protocol_id]
            self._matchers.append((protocol_id, match, handler))
        self._on_change()

    def remove_handler(self, protocol_id: str) -> None:
        known = protocol_id in self._handlers or any(m[0] == protocol_id for m in self._matchers)
        self._handlers.pop(protocol_id, None)
        self._matchers = [m for m in self._matchers if m[0] != protocol_id]
        if known:
            self._on_change()

    @property
    def protocols(self) -> list[str]:
        return list(self._handlers) + [m[0] for m in self._matchers if m[0] not in self._handlers]

    def find(self, protocol: str) -> StreamHandler | None:
        handler = self._handlers.get(protocol)
        if handler is not None:
            return handler
        for _, match, h in self._matchers:
            if match(protocol):
                return h
        return None

    def route_of(self, protocol: str) -> str | None:
        """The id ``protocol`` is routed by: itself for an exact handler, the id a
        ``match`` handler was registered under otherwise (None: no handler).  Metrics
        label inbound streams with it: the ids a match handler takes are the peer's
        choice, and a label value each would grow the series without bound."""
        if protocol in self._handlers:
            return protocol
        for protocol_id, match, _ in self._matchers:
            if match(protocol):
                return protocol_id
        return None

    async def handle_inbound(self, conn: Connection, stream: MuxedStream) -> None:
        """Negotiate the protocol of an inbound stream and run its handler."""
        try:
            protocol = await select_inbound(
                stream, lambda p: self.find(p) is not None, timeout=self.negotiation_timeout
            )
        except Exception as exc:
            self._repeats.log(
                log,
                logging.DEBUG,
                "negotiation",
                "stream negotiation with %s failed: %s",
                short_peer(conn.peer),
                exc,
                extra=peer_extra(conn.peer),
            )
            stream.reset()
            return
        handler = self.find(protocol)
        if handler is None:  # removed in the meantime
            stream.reset()
            return
        stream.protocol = protocol
        if self.stream_hook is not None:
            self.stream_hook(stream, self.route_of(protocol) or protocol)
        self.events.emit(OpenedStream(conn.peer, protocol, stream.stream_id, True))
        self.handled[stream] = conn
        try:
            await handler(stream)
        except Exception as exc:
            self._repeats.log(
                log,
                logging.DEBUG,
                ("handler", protocol),
                "handler for %s from %s failed: %s: %s",
                protocol,
                short_peer(conn.peer),
                type(exc).__name__,
                exc,
                extra=peer_extra(conn.peer),
            )
            stream.reset()
        else:
            with contextlib.suppress(Exception):
                await stream.close()
        finally:
            self.handled.pop(stream, None)
            self.events.emit(ClosedStream(conn.peer, protocol, stream.stream_id, True))


class LazyMuxedStream(MuxedStream):
    """A muxed stream whose protocol confirmation is read on first use (V1Lazy).

    Writes go straight to the muxed stream; the first read checks the responder's
    answer (raising ProtocolNotSupported on ``na``).
    """

    def __init__(self, lazy: LazyStream, inner: MuxedStream) -> None:
        self._lazy = lazy
        self.inner = inner
        self.stream_id = inner.stream_id
        self.is_initiator = inner.is_initiator
        self.protocol = lazy.protocol
        # Writes need no negotiation state: bind them straight to the muxed stream.
        self.write = inner.write  # type: ignore[method-assign]

    async def read(self, max_bytes: int = -1) -> bytes:
        return await self._lazy.read(max_bytes)

    async def write(self, data: bytes | bytearray | memoryview) -> None:
        await self.inner.write(data)

    async def close_write(self) -> None:
        # Read the responder's answer before our half-close: js-libp2p resets a stream
        # whose proposal, data and close all arrive before its handler runs ("Cannot
        # push data onto a stream that is closed"); go's lazy client waits likewise.
        # The answer is usually already here, so this rarely costs a round trip.
        await self._lazy.complete()
        await self.inner.close_write()

    async def close(self) -> None:
        await self._lazy.close()

    async def close_for_shutdown(self, reason: BaseException) -> None:
        await self.inner.close_for_shutdown(reason)  # the host is going: no answer to wait for

    def reset(self) -> None:
        self.inner.reset()

    def unread(self, data: bytes) -> None:
        self.inner.unread(data)


__all__ = ["LazyMuxedStream", "StreamOpener", "StreamRouter"]
