"""The resource manager: scopes, limits and reservations (go-libp2p's ``rcmgr``, smaller).

Every connection and stream lives in a *scope*; scopes nest::

    system
     ├── ip prefix (/32 for IPv4, /56 for IPv6; loopback unlimited by default)
     ├── peer (once the security handshake has named it)
     │    └── connection ── stream
     └── connection (while its handshake runs: no peer yet)

Each scope counts connections (by direction, and handshakes still pending), streams (by
direction) and reserved memory, against a :class:`ScopeLimit`.  Opening a connection or
stream, or reserving memory, checks every scope on the way up and either succeeds in all
of them or in none, raising :class:`~p2pkit.limits.LimitExceeded` that names the scope
and the limit.  What exists is never harmed: a refusal only stops the new thing (the
caller resets the stream or closes the connection).

IP and peer scopes exist only while something is open in them (no per-stranger state
outlives its last connection).  Refusals are counted per ``scope.limit`` and logged at
most once per :data:`LOG_INTERVAL` seconds per key, so a flood cannot flood the log.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Literal, NoReturn

from p2pkit.limits import LimitExceeded, Limits, ResourceLimits, ScopeLimit, limits_from
from p2pkit.tables import SHRINK_BELOW, shrink

if TYPE_CHECKING:
    from p2pkit.peer import PeerId

log = logging.getLogger(__name__)

Direction = Literal["inbound", "outbound"]

#: Seconds between two log lines about refusals of the same ``scope.limit``.
LOG_INTERVAL = 10.0


class Scope:
    """Counters of one scope and the limits they are checked against."""

    __slots__ = ("name", "limit", "conns_in", "conns_out", "pending", "streams_in",
                 "streams_out", "memory", "peer")  # fmt: skip

    def __init__(self, name: str, limit: ScopeLimit) -> None:
        self.name = name
        self.peer: PeerId | None = None  # set on peer scopes (their key)
        self.limit = limit
        self.conns_in = self.conns_out = self.pending = 0
        self.streams_in = self.streams_out = self.memory = 0

    @property
    def empty(self) -> bool:
        counts = (self.conns_in, self.conns_out, self.pending, self.streams_in,
                  self.streams_out, self.memory)  # fmt: skip
        return not any(counts)

    def refusal_conn(self, direction: Direction, pending: bool) -> str | None:
        lim = self.limit
        if lim.conns is not None and self.conns_in + self.conns_out >= lim.conns:
            return "conns"
        if direction == "inbound":
            if lim.conns_inbound is not None and self.conns_in >= lim.conns_inbound:
                return "conns_inbound"
        elif lim.conns_outbound is not None and self.conns_out >= lim.conns_outbound:
            return "conns_outbound"
        if pending and lim.pending is not None and self.pending >= lim.pending:
            return "pending"
        return None

    def refusal_stream(self, direction: Direction) -> str | None:
        lim = self.limit
        if lim.streams is not None and self.streams_in + self.streams_out >= lim.streams:
            return "streams"
        if direction == "inbound":
            if lim.streams_inbound is not None and self.streams_in >= lim.streams_inbound:
                return "streams_inbound"
        elif lim.streams_outbound is not None and self.streams_out >= lim.streams_outbound:
            return "streams_outbound"
        return None

    def refusal_memory(self, n: int) -> str | None:
        if self.limit.memory is not None and self.memory + n > self.limit.memory:
            return "memory"
        return None

    def add_conn(self, direction: Direction, delta: int) -> None:
        if direction == "inbound":
            self.conns_in += delta
        else:
            self.conns_out += delta

    def add_stream(self, direction: Direction, delta: int) -> None:
        if direction == "inbound":
            self.streams_in += delta
        else:
            self.streams_out += delta

    def __repr__(self) -> str:
        return (
            f"<Scope {self.name} conns {self.conns_in}/{self.conns_out} pending "
            f"{self.pending} streams {self.streams_in}/{self.streams_out} "
            f"memory {self.memory}>"
        )


class ResourceManager:
    """Owns the system scope and the IP and peer scopes that are in use."""

    def __init__(
        self, limits: Limits | None = None, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limits = limits or limits_from(ResourceLimits())
        self.system = Scope("system", self.limits.system)
        self._ips: dict[str, Scope] = {}
        self._peers: dict[PeerId, Scope] = {}
        self._unlimited = [ipaddress.ip_network(n) for n in self.limits.unlimited_networks]
        self.refusals: Counter[str] = Counter()
        self._logged: dict[str, tuple[float, int]] = {}
        self._clock = clock

    # -- scopes -----------------------------------------------------------------------

    def ip_key(self, ip: str | None) -> str | None:
        """The IP-prefix scope name of ``ip`` (None: no IP scope, e.g. loopback)."""
        if ip is None:
            return None
        try:
            addr = ipaddress.ip_address(ip.split("%")[0])
        except ValueError:
            return None
        if any(addr in net for net in self._unlimited):
            return None
        bits = self.limits.ip4_prefix if addr.version == 4 else self.limits.ip6_prefix
        return str(ipaddress.ip_network(f"{addr}/{bits}", strict=False))

    def ip_scope(self, key: str) -> Scope:
        scope = self._ips.get(key)
        if scope is None:
            scope = self._ips[key] = Scope(f"ip:{key}", self.limits.ip)
        return scope

    def peer_scope(self, peer: PeerId) -> Scope:
        scope = self._peers.get(peer)
        if scope is None:
            scope = self._peers[peer] = Scope(f"peer:{peer}", self.limits.peer)
            scope.peer = peer
        return scope

    def release_if_empty(self, scope: Scope) -> None:
        """Forget an IP or peer scope once nothing is open in it (bounded state)."""
        if not scope.empty:
            return
        if scope.name.startswith("ip:"):
            self._ips.pop(scope.name[3:], None)
        elif scope.name.startswith("peer:") and scope.peer is not None:
            self._peers.pop(scope.peer, None)

    @property
    def tracked_scopes(self) -> int:
        """IP and peer scopes held now (0 when nothing is open)."""
        return len(self._ips) + len(self._peers)

    # -- refusals ---------------------------------------------------------------------

    def refuse(self, scope: Scope, what: str, value: int | None, detail: str = "") -> NoReturn:
        key = f"{scope.name.split(':', 1)[0]}.{what}"
        name = self.limits.names.get(key, key)
        error = LimitExceeded(name, value if value is not None else 0, scope.name)
        self.record(key, f"{error}{f' ({detail})' if detail else ''}")
        raise error

    def record(self, key: str, message: str) -> None:
        """Count one refusal under ``key``; log it unless ``key`` was logged less than
        :data:`LOG_INTERVAL` seconds ago (then say how many were not)."""
        self.refusals[key] += 1
        now = self._clock()
        last, suppressed = self._logged.get(key, (-LOG_INTERVAL, 0))
        if now - last < LOG_INTERVAL:
            self._logged[key] = (last, suppressed + 1)
            return
        more = f"; {suppressed} more refusals since the last report" if suppressed else ""
        # Rate-limited here, per key: `repeated` tells the CLI's template filter
        # (p2pkit.logs.RepeatFilter) not to collapse it with other keys' refusals, which
        # share this template (a flood of per-IP refusals would hide a per-peer one).
        log.warning("refused: %s%s", message, more, extra={"repeated": suppressed})
        self._logged[key] = (now, 0)

    # -- entry points -----------------------------------------------------------------

    def open_connection(self, direction: Direction, remote_ip: str | None) -> ConnectionScope:
        """Admit a connection whose handshake is about to start (counted as pending)."""
        key = self.ip_key(remote_ip)
        ip = self.ip_scope(key) if key is not None else None
        for scope in (self.system, ip):
            if scope is None:
                continue
            what = scope.refusal_conn(direction, pending=direction == "inbound")
            if what is not None:
                if ip is not None:
                    self.release_if_empty(ip)
                self.refuse(scope, what, getattr(scope.limit, what))
        return ConnectionScope(self, direction, ip)


class _Reserving:
    """Memory reservations checked against a chain of scopes (innermost first); muxers
    reserve what a peer makes them buffer (``p2pkit.abc.MemoryScope``).  Once the scope
    is closed (its memory released at once), both calls do nothing."""

    manager: ResourceManager
    scope: Scope
    done: bool

    def _chain(self) -> list[Scope]:
        raise NotImplementedError

    def reserve_memory(self, n: int) -> None:
        """Reserve ``n`` bytes in this scope and every scope above, or raise LimitExceeded."""
        if n <= 0 or self.done:
            return
        chain = self._chain()
        for scope in chain:
            if scope.refusal_memory(n) is not None:
                self.manager.refuse(scope, "memory", scope.limit.memory, f"reserving {n} bytes")
        for scope in chain:
            scope.memory += n

    def release_memory(self, n: int) -> None:
        if n <= 0 or self.done:
            return
        for scope in self._chain():
            scope.memory -= n


class ConnectionScope(_Reserving):
    """One connection's scope: pending until :meth:`set_peer`, then in its peer's scope."""

    def __init__(self, manager: ResourceManager, direction: Direction, ip: Scope | None) -> None:
        self.manager = manager
        self.direction: Direction = direction
        self.scope = Scope("conn", manager.limits.conn)
        self.ip = ip
        self.peer: Scope | None = None
        self.done = False
        # Handshakes in flight are limited for inbound connections only: strangers start
        # those; our own dials are bounded by the dialer.
        self.pending = direction == "inbound"
        self.streams: set[StreamScope] = set()
        for scope in self._counted():
            scope.add_conn(direction, 1)
            scope.pending += self.pending

    def _counted(self) -> list[Scope]:
        return [s for s in (self.scope, self.ip, self.manager.system) if s is not None]

    def _chain(self) -> list[Scope]:
        return [s for s in (self.scope, self.peer, self.ip, self.manager.system) if s is not None]

    def set_peer(self, peer: PeerId) -> None:
        """The handshake named the peer: count the connection in its scope (or refuse)."""
        if self.peer is not None:
            return
        scope = self.manager.peer_scope(peer)
        what = scope.refusal_conn(self.direction, pending=False)
        if what is None and self.scope.memory:
            what = scope.refusal_memory(self.scope.memory)
        if what is not None:
            self.manager.release_if_empty(scope)
            self.manager.refuse(scope, what, getattr(scope.limit, what))
        scope.add_conn(self.direction, 1)
        scope.memory += self.scope.memory
        self.peer = scope
        self._end_pending()

    def _end_pending(self) -> None:
        if self.pending:
            self.pending = False
            for scope in self._counted():
                scope.pending -= 1

    def open_stream(self, direction: Direction) -> StreamScope:
        """Admit one stream on this connection, or raise LimitExceeded."""
        chain = self._chain()
        for scope in chain:
            what = scope.refusal_stream(direction)
            if what is not None:
                self.manager.refuse(scope, what, getattr(scope.limit, what))
        for scope in chain:
            scope.add_stream(direction, 1)
        stream = StreamScope(self, direction)
        self.streams.add(stream)
        return stream

    def close(self) -> None:
        """The connection is gone: release everything it held.  Idempotent."""
        if self.done:
            return
        for stream in list(self.streams):
            stream.close()
        self.done = True
        self._end_pending()
        memory = self.scope.memory
        for scope in self._chain():
            scope.add_conn(self.direction, -1)
            scope.memory -= memory
        for outer in (self.peer, self.ip):
            if outer is not None:
                self.manager.release_if_empty(outer)


class StreamScope(_Reserving):
    """One stream's scope, inside its connection's."""

    def __init__(self, conn: ConnectionScope, direction: Direction) -> None:
        self.manager = conn.manager
        self.conn = conn
        self.direction: Direction = direction
        self.scope = Scope("stream", conn.manager.limits.stream)
        self.done = False

    def _chain(self) -> list[Scope]:
        return [self.scope, *self.conn._chain()]

    def close(self) -> None:
        """The stream is gone: release its memory and its slot.  Idempotent."""
        if self.done:
            return
        self.done = True
        memory = self.scope.memory
        for scope in self.conn._chain():
            scope.add_stream(self.direction, -1)
            scope.memory -= memory
        self.scope.memory = 0
        streams = self.conn.streams
        streams.discard(self)
        if len(streams) < SHRINK_BELOW:
            shrink(streams)  # a burst of streams grew it (p2pkit.tables)


__all__ = [
    "ConnectionScope",
    "ResourceManager",
    "Scope",
    "StreamScope",
]
