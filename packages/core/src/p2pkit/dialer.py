"""Dialing a peer over several addresses: ranking, staggered starts, backoff, errors.

libp2p/specs ``connections/README.md`` ("connection lifecycle") and go-libp2p's swarm
dialer, with RFC 8305 (happy eyeballs v2) for the address race:

* **Ranking** (:func:`rank_addrs`): IPv6 and IPv4 addresses are interleaved, the
  preferred family first (IPv6 by default, as RFC 8305 says), keeping the given order
  within a family; non-IP addresses (DNS, memory) come last.  Then QUIC addresses
  (``/quic-v1``) move before the others (``prefer_quic``), as go-libp2p ranks them:
  QUIC needs one round trip where TCP + security + muxer need three, and since attempts
  are staggered, TCP starts ``stagger_delay`` (250 ms, go-libp2p's delay for TCP after
  QUIC) after QUIC only if QUIC has not answered or failed by then.
* **Staggered starts**: the first attempt starts at once, each next one
  ``stagger_delay`` later, or at once when a running attempt fails.  The first attempt
  to finish the whole upgrade wins; the others are cancelled, and an attempt that wins
  a photo finish after the winner is closed, so one dial yields one connection.
* **Timeouts**: each attempt is bounded by the host's ``dial_timeout`` (socket connect)
  and ``handshake_timeout`` (upgrade); the whole dial by ``overall_timeout``.
* **Backoff** (:class:`DialBackoff`): an address that failed is skipped for
  ``backoff_base * 2**(failures-1)`` seconds (at most ``backoff_max``) when dialing by
  peer id.  A dial to an explicit multiaddr ignores backoff: the user asked for it.
* **Errors**: a dial that fails everywhere raises :class:`~p2pkit.errors.DialError`
  whose ``errors`` lists ``(address, exception)`` for every address, including the
  ones skipped because of backoff (:class:`AddressBackedOff`) or the gater.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Generic, TypeVar

from multiaddr import Multiaddr

from p2pkit.dnsaddr import parse_server
from p2pkit.errors import DialError, P2PError

if TYPE_CHECKING:
    from p2pkit.peer import PeerId

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclasses.dataclass
class DialerOptions:
    """The ``[p2pkit.dialer]`` table."""

    stagger_delay: float = 0.25
    """Seconds between starting two attempts (RFC 8305 "Connection Attempt Delay")."""
    overall_timeout: float = 30.0
    """Seconds for the whole dial of one peer, all addresses included."""
    max_parallel: int = 8
    """At most this many attempts of one dial run at the same time."""
    prefer_ipv6: bool = True
    """Which family goes first when interleaving (RFC 8305: IPv6)."""
    prefer_quic: bool = True
    """Dial ``/quic-v1`` addresses before the others (see the module docstring)."""
    backoff_base: float = 5.0
    backoff_max: float = 300.0
    dns_servers: list[str] = dataclasses.field(default_factory=list)
    """DNS servers (``"ip"`` or ``"ip:port"``, ``"[ipv6]:port"``) for ``/dnsaddr`` TXT
    lookups (:mod:`p2pkit.dnsaddr`); empty: the system's (``/etc/resolv.conf``)."""

    def __post_init__(self) -> None:
        if self.stagger_delay < 0:
            raise ValueError("dialer stagger_delay must be >= 0")
        if self.overall_timeout <= 0:
            raise ValueError("dialer overall_timeout must be > 0")
        if self.max_parallel < 1:
            raise ValueError("dialer max_parallel must be >= 1")
        if not 0 <= self.backoff_base <= self.backoff_max:
            raise ValueError("dialer needs 0 <= backoff_base <= backoff_max")
        for server in self.dns_servers:
            parse_server(server)  # ValueError for a malformed one


class AddressBackedOff(DialError):
    """The address failed recently and is in backoff; it was not dialed."""


def _family(addr: Multiaddr) -> str:
    for proto, _ in addr.items():
        return "ip6" if proto.name == "ip6" else "ip4" if proto.name == "ip4" else "other"
    return "other"


def _is_quic(addr: Multiaddr) -> bool:
    return any(proto.name == "quic-v1" for proto, _ in addr.items())


def rank_addrs(
    addrs: Sequence[Multiaddr], *, prefer_ipv6: bool = True, prefer_quic: bool = True
) -> list[Multiaddr]:
    """Interleave address families, preferred first, then QUIC before the rest (stable);
    duplicates dropped, and addresses that do not decode (py-multiaddr decodes bytes
    lazily: one given as such) skipped (pure)."""
    seen: set[Multiaddr] = set()
    quic: set[Multiaddr] = set()
    groups: dict[str, list[Multiaddr]] = {"ip6": [], "ip4": [], "other": []}
    for addr in addrs:
        if addr not in seen:
            seen.add(addr)
            try:
                family = _family(addr)
                if _is_quic(addr):
                    quic.add(addr)
            except Exception:  # py-multiaddr raises several unrelated types
                continue
            groups[family].append(addr)
    first, second = (
        (groups["ip6"], groups["ip4"]) if prefer_ipv6 else (groups["ip4"], groups["ip6"])
    )
    out: list[Multiaddr] = []
    for i in range(max(len(first), len(second))):
        out.extend(group[i] for group in (first, second) if i < len(group))
    out += groups["other"]
    if prefer_quic and quic:
        out.sort(key=lambda addr: addr not in quic)  # stable: the order above stays
    return out


class DialBackoff:
    """Per (peer, address) exponential backoff with an injectable clock (pure).

    Bounded: an entry is forgotten ``maximum`` seconds after its backoff ended (the
    failure count restarts from one), and at most ``max_entries`` are kept, the entries
    that failed least recently being dropped first.
    """

    def __init__(
        self,
        base: float,
        maximum: float,
        clock: Callable[[], float] = time.monotonic,
        *,
        max_entries: int = 4096,
    ) -> None:
        self.base = base
        self.maximum = maximum
        self.clock = clock
        self.max_entries = max_entries
        # Insertion order = order of the last failure (failed() re-inserts).
        self._entries: dict[tuple[PeerId | None, Multiaddr], tuple[int, float]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def failed(self, peer: PeerId | None, addr: Multiaddr) -> None:
        key = (peer, addr)
        now = self.clock()
        entry = self._entries.pop(key, None)
        failures = 1 if entry is None or self._stale(entry, now) else entry[0] + 1
        delay = min(self.base * 2 ** (failures - 1), self.maximum)
        self._entries[key] = (failures, now + delay)
        if len(self._entries) > self.max_entries:
            self.evict()

    def _stale(self, entry: tuple[int, float], now: float) -> bool:
        return entry[1] + self.maximum <= now

    def evict(self) -> None:
        """Drop stale entries, then the oldest ones beyond ``max_entries``."""
        now = self.clock()
        for key in [k for k, e in self._entries.items() if self._stale(e, now)]:
            del self._entries[key]
        while len(self._entries) > self.max_entries:
            del self._entries[next(iter(self._entries))]

    def succeeded(self, peer: PeerId | None, addr: Multiaddr) -> None:
        self._entries.pop((peer, addr), None)

    def until(self, peer: PeerId | None, addr: Multiaddr) -> float | None:
        """Monotonic time until which ``addr`` is backed off, or None."""
        entry = self._entries.get((peer, addr))
        if entry is None:
            return None
        now = self.clock()
        if self._stale(entry, now):
            del self._entries[(peer, addr)]
            return None
        if entry[1] <= now:
            return None
        return entry[1]

    def clear(self, peer: PeerId | None = None) -> None:
        if peer is None:
            self._entries.clear()
        else:
            for key in [k for k in self._entries if k[0] == peer]:
                del self._entries[key]


Attempt = Callable[[Multiaddr], Awaitable[T]]


class Dialer(Generic[T]):
    """Runs one multi-address dial (see the module docstring).

    ``attempt(addr)`` dials and upgrades one address and returns the upgraded result;
    ``discard(result)`` disposes of a result that lost the race.
    """

    def __init__(
        self,
        options: DialerOptions | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.options = options or DialerOptions()
        self.backoff = DialBackoff(self.options.backoff_base, self.options.backoff_max, clock)

    async def dial(
        self,
        peer: PeerId | None,
        addrs: Sequence[Multiaddr],
        attempt: Attempt[T],
        discard: Callable[[T], None],
        *,
        use_backoff: bool = True,
    ) -> tuple[T, Multiaddr]:
        ranked = rank_addrs(
            addrs, prefer_ipv6=self.options.prefer_ipv6, prefer_quic=self.options.prefer_quic
        )
        errors: list[tuple[object, BaseException]] = []
        queue: list[Multiaddr] = []
        for addr in ranked:
            until = self.backoff.until(peer, addr) if use_backoff else None
            if until is None:
                queue.append(addr)
            else:
                remaining = until - self.backoff.clock()
                errors.append((addr, AddressBackedOff(f"in backoff for {remaining:.1f} s more")))
        if not queue:
            raise DialError(f"no address to dial for {peer or 'peer'}", errors)

        running: dict[asyncio.Task[T], Multiaddr] = {}
        loop = asyncio.get_running_loop()

        def start_next() -> None:
            addr = queue.pop(0)
            running[loop.create_task(_run(attempt, addr), name=f"p2pkit-dial-{addr}")] = addr

        try:
            async with asyncio.timeout(self.options.overall_timeout):
                start_next()
                while running:
                    can_start = bool(queue) and len(running) < self.options.max_parallel
                    done, _ = await asyncio.wait(
                        running,
                        timeout=self.options.stagger_delay if can_start else None,
                        return_when=asyncio.FIRST_COMPLETED,
                    )
                    if not done:
                        start_next()  # the stagger delay passed with no answer
                        continue
                    winner: asyncio.Task[T] | None = None
                    won_addr = ranked[0]
                    for task in done:
                        addr = running.pop(task)
                        exc = task.exception()
                        if exc is None and winner is None:
                            winner = task
                            self.backoff.succeeded(peer, addr)
                            won_addr = addr
                        elif exc is None:
                            discard(task.result())
                        else:
                            errors.append((addr, exc))
                            if use_backoff:
                                self.backoff.failed(peer, addr)
                    if winner is not None:
                        await self._cancel_losers(running, discard)
                        return winner.result(), won_addr
                    # A failure starts the next attempt at once (no stagger wait).
                    if queue and len(running) < self.options.max_parallel:
                        start_next()
        except TimeoutError:
            for addr in running.values():
                errors.append(
                    (addr, TimeoutError(f"overall dial timeout {self.options.overall_timeout} s"))
                )
            await self._cancel_losers(running, discard)
            for addr in queue:
                errors.append((addr, TimeoutError("not tried: overall dial timeout")))
            raise DialError(
                f"dial to {peer or 'peer'} timed out after {self.options.overall_timeout} s",
                errors,
            ) from None
        except BaseException:
            await self._cancel_losers(running, discard)
            raise
        if len(errors) == 1 and len(ranked) == 1:
            raise errors[0][1]
        raise DialError(f"all {len(ranked)} addresses failed for {peer or 'peer'}", errors)

    @staticmethod
    async def _cancel_losers(
        running: dict[asyncio.Task[T], Multiaddr], discard: Callable[[T], None]
    ) -> None:
        tasks = list(running)
        running.clear()
        for task in tasks:
            task.cancel()
        if tasks:
            # asyncio.wait never raises the tasks' exceptions, only our own cancellation.
            await asyncio.wait(tasks)
        for task in tasks:
            if not task.cancelled() and task.exception() is None:
                discard(task.result())  # finished before the cancel landed: close it


async def _run(attempt: Attempt[T], addr: Multiaddr) -> T:
    try:
        return await attempt(addr)
    except (P2PError, OSError, TimeoutError):
        raise
    except Exception as exc:  # a transport bug must not look like a hang
        log.debug("dial attempt to %s raised %s", addr, type(exc).__name__, exc_info=True)
        raise


__all__ = [
    "AddressBackedOff",
    "DialBackoff",
    "Dialer",
    "DialerOptions",
    "rank_addrs",
]
