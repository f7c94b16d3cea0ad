"""The default connection manager: watermarks, grace period, silence period, tags, protection.

libp2p/specs ``connections/README.md`` ("state management") leaves the policy to the
implementation; this one behaves like go-libp2p's ``BasicConnMgr`` so users find what
they expect:

* when the number of connections goes above ``high_water`` the manager trims down to
  ``low_water``, at most once per ``silence_period`` (``trim()`` on demand ignores the
  silence period); the background check runs every ``silence_period`` by default and,
  like go-libp2p's, trims at the first check that finds too many connections;
* a peer first seen less than ``grace_period`` ago is never trimmed (its identify and
  first streams must get a chance to tag it);
* a protected peer (``protect(peer, tag)``) is never trimmed; tags and protections
  are kept per peer, whether it is connected or not, and read at trim time, so a
  change (``unprotect``, ``untag_peer``) takes effect on the next trim;
* a peer's tags outlive its connections by ``tag_retention`` (60 s) only: they are
  forgotten that long after its last connection closed, or after they were set on a
  peer that did not connect since (go-libp2p's ``BasicConnMgr`` drops them at the
  last disconnect, and early tags of a peer that never connects once past its grace
  period), so an application tagging every peer it meets keeps nothing per peer
  gone.  Protections stay until ``unprotect``, as go's do;
* the others are closed peer by peer, lowest score first (score = sum of the peer's
  tag weights plus its connections' ``tags``), fewest open streams first among equals.

The choice is a pure function (:func:`select_for_trim`) of the bookkeeping and a time
given by an injectable clock, so tests are deterministic; the asyncio part only closes
connections and runs an optional periodic check.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from array import array
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from p2pkit.abc import ConnectionManager, HostConnection

if TYPE_CHECKING:
    from p2pkit.peer import PeerId
    from p2pkit.plugins.spec import Components

log = logging.getLogger(__name__)


@dataclasses.dataclass
class ConnManagerOptions:
    """Options of the default connection manager (``[p2pkit.connection_manager]``)."""

    low_water: int = 160
    """Trim down to this many connections."""
    high_water: int = 192
    """Trim when there are more connections than this."""
    grace_period: float = 60.0
    """Seconds during which a newly seen peer is never trimmed."""
    silence_period: float = 10.0
    """Minimum seconds between two automatic trims."""
    check_interval: float | None = None
    """Seconds between background checks (None = ``silence_period``).  Needed because a
    trim may be due only once grace periods have passed, with no new connection."""
    close_timeout: float = 2.0
    """Seconds a trimmed connection may take to close gracefully before it is aborted."""
    tag_retention: float = 60.0
    """Seconds a peer's tags are kept once it has no connection (after its last one
    closed, or since they were set on a peer not connected); then they are forgotten."""
    clock: Callable[[], float] | None = None
    """Time source (default ``time.monotonic``); inject a fake one in tests."""

    def __post_init__(self) -> None:
        if not 0 <= self.low_water <= self.high_water:
            raise ValueError("connection manager needs 0 <= low_water <= high_water")
        for name in ("grace_period", "silence_period", "close_timeout", "tag_retention"):
            if getattr(self, name) < 0:
                raise ValueError(f"connection manager {name} must be >= 0")
        if self.check_interval is not None and self.check_interval <= 0:
            raise ValueError("connection manager check_interval must be > 0")


@dataclasses.dataclass
class PeerInfo:
    """What the manager knows of one connected peer."""

    first_seen: float
    conns: list[HostConnection] = dataclasses.field(default_factory=list)
    tags: dict[str, int] = dataclasses.field(default_factory=dict)
    protected: set[str] = dataclasses.field(default_factory=set)

    @property
    def score(self) -> int:
        return sum(self.tags.values()) + sum(sum(c.tags.values()) for c in self.conns)

    @property
    def stream_count(self) -> int:
        total = 0
        for conn in self.conns:
            with contextlib.suppress(Exception):
                total += len(conn.streams)
        return total


def select_for_trim(
    peers: dict[PeerId, PeerInfo], *, low_water: int, grace_period: float, now: float
) -> list[HostConnection]:
    """Connections to close (pure), go's ``BasicConnMgr`` rule: only the candidates
    (neither protected nor in their grace period) count, and they are trimmed down to
    ``low_water`` of *their* connections.  Counting every connection instead made
    protected and young peers push out every candidate, the most valued included."""
    if sum(len(p.conns) for p in peers.values()) <= low_water:
        return []
    candidates = [
        p
        for p in peers.values()
        if p.conns and not p.protected and now - p.first_seen >= grace_period
    ]
    excess = sum(len(p.conns) for p in candidates) - low_water
    if excess <= 0:
        return []  # fewer candidates than low_water: they are all worth keeping
    candidates.sort(key=lambda p: (p.score, p.stream_count, p.first_seen))
    out: list[HostConnection] = []
    for info in candidates:
        if excess <= 0:
            break
        out.extend(info.conns)
        excess -= len(info.conns)
    return out


@dataclasses.dataclass
class _Connected:
    """The manager's record of one connected peer: when first seen, and its connections.

    Tags and protections are deliberately not here: they live in the manager's per-peer
    tables (the single source of truth, also for peers not connected) and are joined
    in at trim time.
    """

    first_seen: float
    conns: list[HostConnection] = dataclasses.field(default_factory=list)


class BasicConnectionManager(ConnectionManager):
    """The default :class:`~p2pkit.abc.ConnectionManager` (see the module docstring)."""

    def __init__(self, options: ConnManagerOptions | None = None) -> None:
        self.options = options or ConnManagerOptions()
        self._clock = self.options.clock or time.monotonic
        self._peers: dict[PeerId, _Connected] = {}
        # Tags and protections may be set before connections; tags outlive them by
        # tag_retention, protections until unprotect().
        self._tags: dict[PeerId, dict[str, int]] = {}
        self._protected: dict[PeerId, set[str]] = {}
        # Tagged peers without a connection -> since when: their tags go tag_retention
        # later.  Insertion order is time order (entries are re-inserted), so the due
        # ones are at the front.
        self._unconnected: dict[PeerId, float] = {}
        # When the last trim started, as a C double (array): a float object stored by a
        # trim during a burst of connections would stay in, and keep resident, the
        # burst's memory once the connections closed (p2pkit.freelists).
        self._last_trim = array("d", (float("-inf"),))
        self._trim_task: asyncio.Task[int] | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._closing: set[int] = set()
        self.trimmed = 0
        """Connections closed by trims so far (for metrics and tests)."""
        self.checks = 0
        """Background checks run so far (for metrics and tests)."""

    # -- bookkeeping ----------------------------------------------------------------------

    @property
    def connection_count(self) -> int:
        return sum(len(p.conns) for p in self._peers.values())

    @property
    def tagged_peers(self) -> int:
        """Peers with tags (connected or not): those not connected are forgotten after
        ``tag_retention`` (module docstring)."""
        return len(self._tags)

    def connected(self, conn: HostConnection) -> None:
        info = self._peers.get(conn.peer)
        if info is None:
            info = self._peers[conn.peer] = _Connected(first_seen=self._clock())
            self._unconnected.pop(conn.peer, None)
        info.conns.append(conn)
        if self.connection_count > self.options.high_water:
            self._maybe_trim()

    def disconnected(self, conn: HostConnection) -> None:
        self._closing.discard(id(conn))
        info = self._peers.get(conn.peer)
        if info is None or conn not in info.conns:
            return
        info.conns.remove(conn)
        if not info.conns:
            del self._peers[conn.peer]
            if conn.peer in self._tags:
                self._unconnected[conn.peer] = self._clock()
        self._forget_stale_tags()

    def protect(self, peer: PeerId, tag: str) -> None:
        self._protected.setdefault(peer, set()).add(tag)

    def unprotect(self, peer: PeerId, tag: str) -> bool:
        tags = self._protected.get(peer)
        if tags is None:
            return False
        tags.discard(tag)
        if not tags:
            del self._protected[peer]
        return bool(tags)

    def is_protected(self, peer: PeerId, tag: str | None = None) -> bool:
        tags = self._protected.get(peer, set())
        return bool(tags) if tag is None else tag in tags

    def tag_peer(self, peer: PeerId, tag: str, weight: int) -> None:
        self._tags.setdefault(peer, {})[tag] = weight
        self._tagged(peer)

    def untag_peer(self, peer: PeerId, tag: str) -> None:
        tags = self._tags.get(peer)
        if tags is not None:
            tags.pop(tag, None)
            if not tags:
                del self._tags[peer]
                self._unconnected.pop(peer, None)

    def upsert_tag(self, peer: PeerId, tag: str, update: Callable[[int], int]) -> None:
        """Set a tag from its current weight (0 when absent), like go's ``UpsertTag``."""
        tags = self._tags.setdefault(peer, {})
        tags[tag] = update(tags.get(tag, 0))
        self._tagged(peer)

    def _tagged(self, peer: PeerId) -> None:
        """A tag was set: on a peer without a connection, it lasts ``tag_retention``."""
        if peer not in self._peers:
            self._unconnected.pop(peer, None)  # re-inserted: the order stays time order
            self._unconnected[peer] = self._clock()
            self._forget_stale_tags()

    def _forget_stale_tags(self) -> None:
        """Forget the tags of peers without a connection for ``tag_retention`` (the due
        ones are the oldest entries: amortised constant time per call)."""
        if not self._unconnected:
            return
        deadline = self._clock() - self.options.tag_retention
        while self._unconnected:
            peer, since = next(iter(self._unconnected.items()))
            if since > deadline:
                break
            del self._unconnected[peer]
            self._tags.pop(peer, None)

    def tags(self, peer: PeerId) -> dict[str, int]:
        return dict(self._tags.get(peer, {}))

    def score(self, peer: PeerId) -> int:
        return self._info(peer, self._peers.get(peer)).score

    def _info(self, peer: PeerId, entry: _Connected | None) -> PeerInfo:
        """A snapshot joining a peer's connections with its current tags and protection."""
        conns = [c for c in entry.conns if id(c) not in self._closing] if entry else []
        return PeerInfo(
            first_seen=entry.first_seen if entry else self._clock(),
            conns=conns,
            tags=dict(self._tags.get(peer, {})),
            protected=set(self._protected.get(peer, ())),
        )

    # -- trimming ---------------------------------------------------------------------------

    def plan(self) -> list[HostConnection]:
        """The connections a trim would close now (pure, for inspection)."""
        live = {peer: self._info(peer, entry) for peer, entry in self._peers.items()}
        return select_for_trim(
            live,
            low_water=self.options.low_water,
            grace_period=self.options.grace_period,
            now=self._clock(),
        )

    def _maybe_trim(self, slack: float = 0.0) -> None:
        """Schedule an automatic trim unless one ran within the silence period.

        ``slack`` is the background check's tolerance: its checks are one interval
        apart (by default the silence period itself), so a trim made just after one
        check must not make the next check, a hair less than a period later, wait for
        a third; go-libp2p trims at every check that finds too many connections.
        """
        if self._trim_task is not None and not self._trim_task.done():
            return
        if self._clock() - self._last_trim[0] + slack < self.options.silence_period:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._trim_task = task = loop.create_task(self.trim(), name="p2pkit-connmgr-trim")
        task.add_done_callback(self._trim_done)

    def _trim_done(self, task: asyncio.Task[int]) -> None:
        # A finished trim is not kept (nor its coroutine and context): made during a
        # burst of connections, it would keep part of the burst's memory resident.
        if self._trim_task is task:
            self._trim_task = None

    async def trim(self) -> int:
        """Close the lowest-value connections down to ``low_water`` (ignores silence)."""
        self._last_trim[0] = self._clock()
        victims = self.plan()
        if not victims:
            return 0
        log.info(
            "connection manager: %d connections > low water %d, closing %d",
            self.connection_count,
            self.options.low_water,
            len(victims),
        )
        for conn in victims:
            self._closing.add(id(conn))
        self.trimmed += len(victims)
        await asyncio.gather(*(self._close(c) for c in victims), return_exceptions=True)
        return len(victims)

    async def _close(self, conn: HostConnection) -> None:
        try:
            async with asyncio.timeout(self.options.close_timeout):
                await conn.close()
        except asyncio.CancelledError:
            _abort(conn)
            raise
        except Exception:
            _abort(conn)

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        if self._ticker is None:
            self._ticker = asyncio.get_running_loop().create_task(
                self._tick(), name="p2pkit-connmgr-ticker"
            )

    async def _tick(self) -> None:
        interval = self.options.check_interval or self.options.silence_period or 1.0
        while True:
            await asyncio.sleep(interval)
            self.checks += 1
            self._forget_stale_tags()
            if self.connection_count > self.options.high_water:
                self._maybe_trim(slack=interval / 2)

    async def close(self) -> None:
        tasks: Iterable[asyncio.Task[Any] | None] = (self._ticker, self._trim_task)
        for task in tasks:
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
        self._ticker = None
        self._trim_task = None


def _abort(conn: HostConnection) -> None:
    """Tear down a connection that did not close in time (host connections only)."""
    muxed: Any = getattr(conn, "muxed", None)
    if muxed is not None:
        muxed.abort()


def connection_manager_factory(components: Components, options: Any) -> BasicConnectionManager:
    """Plugin factory of the ``default`` connection manager."""
    return BasicConnectionManager(options)


__all__ = [
    "BasicConnectionManager",
    "ConnManagerOptions",
    "PeerInfo",
    "select_for_trim",
]
