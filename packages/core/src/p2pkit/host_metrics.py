"""The p2pkit series: what a host records into a configured :class:`~p2pkit.metrics.Metrics`.

Built only when a metrics plugin is configured; without one the host installs none of
this (no listener, no hook), so metrics cost nothing.  With one, recording happens at the
few points where it is cheap:

* **event-bus listeners** (``Connected``, ``OpenedStream``, ``PeerIdentified``): one
  counter increment per connection, stream or identify;
* **the swarm's handshake and dial points** (:class:`SwarmMetrics`, a hook the swarm
  calls only when set): durations and failures, per connection attempt;
* **per-stream byte counts**: a stream's ``read``/``write``/``unread`` are wrapped when
  its protocol is agreed, adding to two plain integers per protocol; the sums reach the
  counters in batches, when the backend collects;
* **at collection**: the gauges of open connections and streams (read from the
  connection table), and the counts the core keeps anyway (resource-manager refusals,
  connection-manager trims, event-bus drops, identify failures), as deltas.

Label values come from bounded sets: plugin names, protocol ids (inbound: the id the
handler was registered under, which for a ``match`` handler is not what the peer
proposed; outbound: the id the application asked for), directions, and error class
names.  Peer ids and addresses are never labels.
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter as Tally
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from p2pkit.events import Connected, Event, EventBus, OpenedStream, PeerIdentified
from p2pkit.metrics import Metrics

if TYPE_CHECKING:
    from multiaddr import Multiaddr

    from p2pkit.abc import Buffer, MuxedStream
    from p2pkit.connection import Connection
    from p2pkit.network import MuxedTransportConnection
    from p2pkit.streams import StreamOpener, StreamRouter
    from p2pkit.swarm import Swarm

C = TypeVar("C", bound="MuxedTransportConnection")

#: name -> (kind, help, label names): every series a host exports (the dashboard in
#: ``docs/grafana-dashboard.json`` uses these names; a test keeps the two in step).
SERIES: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "p2pkit_connections": (
        "gauge", "Open connections", ("transport", "security", "muxer", "direction"),
    ),
    "p2pkit_connections_opened_total": (
        "counter", "Connections admitted", ("transport", "security", "muxer", "direction"),
    ),
    "p2pkit_handshake_duration_seconds": (
        "histogram", "Connection upgrade time (security + muxer)",
        ("direction", "security", "muxer"),
    ),
    "p2pkit_handshake_failures_total": (
        "counter", "Connection upgrades that failed, by error", ("direction", "reason"),
    ),
    "p2pkit_streams": ("gauge", "Open streams", ("protocol", "direction")),
    "p2pkit_streams_opened_total": (
        "counter", "Streams whose protocol was agreed", ("protocol", "direction"),
    ),
    "p2pkit_stream_bytes_received_total": (
        "counter", "Application bytes read from streams", ("protocol",),
    ),
    "p2pkit_stream_bytes_sent_total": (
        "counter", "Application bytes written to streams", ("protocol",),
    ),
    "p2pkit_dial_attempts_total": ("counter", "Dial attempts (one per address)", ("transport",)),
    "p2pkit_dial_failures_total": ("counter", "Dial attempts that failed, by error", ("error",)),
    "p2pkit_connmgr_trimmed_connections_total": (
        "counter", "Connections closed by connection-manager trims", (),
    ),
    "p2pkit_rcmgr_refusals_total": (
        "counter", "Resource-manager refusals", ("scope", "limit"),
    ),
    "p2pkit_event_bus_dropped_total": (
        "counter", "Events dropped for slow subscribers", ("event",),
    ),
    "p2pkit_identify_total": ("counter", "Identify results (ok or error class)", ("result",)),
}  # fmt: skip


def transport_label(addr: Multiaddr | None) -> str:
    """A transport's label from an address: its last protocol that is not an identity
    (``/ip4/.../tcp/1`` -> ``tcp``, ``/ip4/.../udp/1/quic-v1`` -> ``quic-v1``)."""
    if addr is None:
        return "unknown"
    names = [p.name for p in addr.protocols() if p.name not in ("p2p", "ipfs", "certhash")]
    return names[-1] if names else "unknown"


def _transport_of(conn: Connection) -> str:
    raw = getattr(conn.upgraded, "raw", None)
    name = getattr(raw, "transport_name", None)
    return name if isinstance(name, str) else transport_label(conn.remote_addr)


def _stack(conn: Connection) -> tuple[str, str, str, str]:
    return (_transport_of(conn), conn.security_protocol, conn.muxer_protocol, conn.direction)


class _Deltas:
    """Turns a count the core keeps (a ``collections.Counter`` of keys) into counter
    increments: each collection adds what grew since the previous one."""

    def __init__(self) -> None:
        self.seen: dict[Any, int] = {}

    def grown(self, counts: dict[Any, int]) -> list[tuple[Any, int]]:
        out = []
        for key, value in counts.items():
            delta = value - self.seen.get(key, 0)
            if delta > 0:
                out.append((key, delta))
                self.seen[key] = value
        return out


@dataclasses.dataclass
class Sources:
    """What the collector reads: the host's parts that keep counts anyway."""

    swarm: Swarm
    opener: StreamOpener
    router: StreamRouter
    events: EventBus
    connmgr: object
    identify_failures: Callable[[], dict[str, int]]


class HostMetrics:
    """Creates the series in ``metrics`` and records into them (module docstring)."""

    def __init__(self, metrics: Metrics, sources: Sources) -> None:
        self.metrics = metrics
        self.sources = sources
        fam: dict[str, Any] = {}
        for name, (kind, help_text, labels) in SERIES.items():
            fam[name] = getattr(metrics, kind)(name, help_text, labels)
        self.f = fam
        # protocol -> [bytes read, bytes written] not yet handed to the counters.
        self._bytes: dict[str, list[int]] = {}
        self._deltas: dict[str, _Deltas] = {k: _Deltas() for k in ("rcmgr", "bus", "ident")}
        self._trimmed = 0

    def attach(self) -> None:
        """Install the listeners and hooks (the host calls this once, when built)."""
        src = self.sources
        src.events.add_listener(self._on_event, Connected, OpenedStream, PeerIdentified)
        src.swarm.observer = SwarmMetrics(self)
        src.opener.stream_hook = src.router.stream_hook = self.count_stream
        self.metrics.add_collector(self.collect)

    # -- listeners and hooks --------------------------------------------------------------

    def _on_event(self, event: Event) -> None:
        if isinstance(event, Connected):
            self.f["p2pkit_connections_opened_total"].inc(*_stack(event.connection))
        elif isinstance(event, OpenedStream):
            if event.inbound:
                protocol = self._inbound_label(event.protocol)
                self.f["p2pkit_streams_opened_total"].inc(protocol, "inbound")
            else:
                self.f["p2pkit_streams_opened_total"].inc(event.protocol, "outbound")
        elif isinstance(event, PeerIdentified):
            self.f["p2pkit_identify_total"].inc("ok")

    def _inbound_label(self, protocol: str) -> str:
        """An inbound stream's protocol label: the id its handler is registered under
        (:meth:`~p2pkit.streams.StreamRouter.route_of`; "other" once it is gone)."""
        return self.sources.router.route_of(protocol) or "other"

    def count_stream(self, stream: MuxedStream, protocol: str) -> None:
        """Count the bytes ``stream`` carries from now on, under ``protocol``: its read,
        write and unread methods are wrapped on the instance (one addition each), so the
        muxer and the stream's identity are untouched."""
        cell = self._bytes.get(protocol)
        if cell is None:
            cell = self._bytes[protocol] = [0, 0]
        read, write, unread = stream.read, stream.write, stream.unread

        async def counted_read(max_bytes: int = -1) -> bytes:
            data = await read(max_bytes)
            cell[0] += len(data)
            return data

        async def counted_write(data: Buffer) -> None:
            await write(data)
            cell[1] += data.nbytes if isinstance(data, memoryview) else len(data)

        def counted_unread(data: bytes) -> None:
            unread(data)
            cell[0] -= len(data)  # read again later: counted once

        try:
            stream.read = counted_read  # type: ignore[method-assign]
            stream.write = counted_write  # type: ignore[method-assign]
            stream.unread = counted_unread  # type: ignore[method-assign]
        except AttributeError:  # a stream class with __slots__: its bytes go uncounted
            pass

    # -- collection --------------------------------------------------------------------------

    def collect(self) -> None:
        """Set the gauges and flush the batched and kept counts (before each export)."""
        f, src = self.f, self.sources
        conns = src.swarm.connections(draining=True)
        gauge = f["p2pkit_connections"]
        gauge.clear()
        for labels, n in Tally(_stack(c) for c in conns).items():
            gauge.set(n, *labels)
        streams = Tally(
            (s.protocol, "outbound")
            if s.is_initiator
            else (self._inbound_label(s.protocol), "inbound")
            for c in conns
            for s in c.streams
            if s.protocol
        )
        gauge = f["p2pkit_streams"]
        gauge.clear()
        for key, n in streams.items():
            gauge.set(n, *key)
        for protocol, cell in self._bytes.items():
            received, sent = cell
            if received > 0:  # below 0 after an unread(): kept until read again
                cell[0] = 0
                f["p2pkit_stream_bytes_received_total"].inc(protocol, amount=received)
            if sent > 0:
                cell[1] = 0
                f["p2pkit_stream_bytes_sent_total"].inc(protocol, amount=sent)
        for key, n in self._deltas["rcmgr"].grown(src.swarm.rcmgr.refusals):
            scope, _, limit = str(key).partition(".")
            f["p2pkit_rcmgr_refusals_total"].inc(scope, limit, amount=n)
        for key, n in self._deltas["bus"].grown(src.events.dropped):
            f["p2pkit_event_bus_dropped_total"].inc(str(key), amount=n)
        for key, n in self._deltas["ident"].grown(src.identify_failures()):
            f["p2pkit_identify_total"].inc(str(key), amount=n)
        trimmed = getattr(src.connmgr, "trimmed", None)
        if isinstance(trimmed, int) and trimmed > self._trimmed:
            f["p2pkit_connmgr_trimmed_connections_total"].inc(amount=trimmed - self._trimmed)
            self._trimmed = trimmed


class SwarmMetrics:
    """The swarm's hook (``Swarm.observer``): wraps each upgrade and dial attempt."""

    def __init__(self, host_metrics: HostMetrics) -> None:
        f = host_metrics.f
        self._duration = f["p2pkit_handshake_duration_seconds"]
        self._failures = f["p2pkit_handshake_failures_total"]
        self._attempts = f["p2pkit_dial_attempts_total"]
        self._dial_failures = f["p2pkit_dial_failures_total"]

    async def upgrade(self, direction: str, pending: Awaitable[C]) -> C:
        """Await an upgrade: its duration on success, its error class on failure
        (cancellation, a lost dial race, is neither)."""
        started = time.monotonic()
        try:
            conn = await pending
        except Exception as exc:
            self._failures.inc(direction, type(exc).__name__)
            raise
        self._duration.observe(
            time.monotonic() - started, direction, conn.security_protocol, conn.muxer_protocol
        )
        return conn

    async def dial(
        self, addr: Multiaddr, attempt: Awaitable[MuxedTransportConnection]
    ) -> MuxedTransportConnection:
        """Await one dial attempt, counting it and, if it fails, its error class."""
        self._attempts.inc(transport_label(addr))
        try:
            return await attempt
        except Exception as exc:
            self._dial_failures.inc(type(exc).__name__)
            raise


__all__ = ["SERIES", "HostMetrics", "Sources", "SwarmMetrics", "transport_label"]
