"""Host events and the async event bus.

Events are frozen dataclasses.  ``EventBus.emit`` never blocks and never raises: each
subscriber has a bounded queue; when a subscriber falls behind, further events for it
are dropped and counted (``Subscription.dropped``) and a warning is logged once per
overflow episode, so a slow subscriber can never stall the host.  Events of one
connection are emitted in order (Connected before its streams, Disconnected last).

In-process bookkeeping that must not lose events (the peerstore recording connections)
uses :meth:`EventBus.add_listener` instead: a synchronous callback run inside ``emit``,
before the subscriber queues, which must be quick and must not block; its exceptions are
logged and never reach the emitter.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections import Counter
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from multiaddr import Multiaddr

    from p2pkit.connection import Connection
    from p2pkit.peer import PeerId

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Event:
    """Base class of host events."""


@dataclasses.dataclass(frozen=True)
class Connected(Event):
    peer: PeerId
    connection: Connection


@dataclasses.dataclass(frozen=True)
class Disconnected(Event):
    peer: PeerId
    connection: Connection


@dataclasses.dataclass(frozen=True)
class OpenedStream(Event):
    peer: PeerId
    protocol: str
    stream_id: int
    inbound: bool


@dataclasses.dataclass(frozen=True)
class ClosedStream(Event):
    peer: PeerId
    protocol: str
    stream_id: int
    inbound: bool


@dataclasses.dataclass(frozen=True)
class Listen(Event):
    addrs: tuple[Multiaddr, ...]


@dataclasses.dataclass(frozen=True)
class ListenClose(Event):
    addrs: tuple[Multiaddr, ...]


@dataclasses.dataclass(frozen=True)
class PeerIdentified(Event):
    peer: PeerId
    protocols: tuple[str, ...]
    listen_addrs: tuple[Multiaddr, ...]
    agent_version: str
    protocol_version: str
    observed_addr: Multiaddr | None


E = TypeVar("E", bound=Event)


class Subscription:
    """A bounded queue of events of the subscribed types; async-iterable."""

    def __init__(self, bus: EventBus, types: tuple[type[Event], ...], maxsize: int) -> None:
        self._bus = bus
        self.types = types
        self._queue: asyncio.Queue[Event] = asyncio.Queue(maxsize)
        self.dropped = 0
        self._overflowing = False

    def _offer(self, event: Event) -> None:
        try:
            self._queue.put_nowait(event)
            self._overflowing = False
        except asyncio.QueueFull:
            self.dropped += 1
            self._bus.dropped[type(event).__name__] += 1
            if not self._overflowing:
                self._overflowing = True
                log.warning(
                    "slow event subscriber for %s: queue full, dropping events",
                    ", ".join(t.__name__ for t in self.types),
                )

    async def get(self, timeout: float | None = None) -> Event:
        if timeout is None:
            return await self._queue.get()
        async with asyncio.timeout(timeout):
            return await self._queue.get()

    def get_nowait(self) -> Event | None:
        try:
            return self._queue.get_nowait()
        except asyncio.QueueEmpty:
            return None

    def close(self) -> None:
        self._bus._subs.discard(self)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._iter()

    async def _iter(self) -> AsyncIterator[Event]:
        while True:
            yield await self._queue.get()


class EventBus:
    """Type-keyed publish/subscribe; subscribers to ``Event`` get everything."""

    def __init__(self, default_queue_size: int = 256) -> None:
        self._subs: set[Subscription] = set()
        self._listeners: list[tuple[tuple[type[Event], ...], Callable[[Event], None]]] = []
        self.default_queue_size = default_queue_size
        # Events dropped for slow subscribers, by event type, over the bus's life (the
        # subscriptions' own counts go with them): read by metrics.
        self.dropped: Counter[str] = Counter()

    def add_listener(
        self, callback: Callable[[Event], None], *types: type[Event]
    ) -> Callable[[], None]:
        """Call ``callback(event)`` synchronously for every event of ``types`` (all when
        none); returns a function that removes the listener."""
        entry = (types or (Event,), callback)
        self._listeners.append(entry)

        def remove() -> None:
            if entry in self._listeners:
                self._listeners.remove(entry)

        return remove

    def subscribe(self, *types: type[Event], maxsize: int | None = None) -> Subscription:
        sub = Subscription(self, types or (Event,), maxsize or self.default_queue_size)
        self._subs.add(sub)
        return sub

    def emit(self, event: Event) -> None:
        for types, callback in list(self._listeners):
            if isinstance(event, types):
                try:
                    callback(event)
                except Exception:
                    log.exception("event listener %r failed on %s", callback, type(event).__name__)
        for sub in list(self._subs):
            if isinstance(event, sub.types):
                sub._offer(event)
