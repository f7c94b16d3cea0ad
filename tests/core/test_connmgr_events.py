"""Event guarantees with connection management at work: per-connection order across
trims, Listen/ListenClose, and a slow subscriber that is reported but never blocks."""

from __future__ import annotations

import asyncio
import logging

from p2pkit.events import (
    Connected,
    Disconnected,
    Event,
    Listen,
    ListenClose,
)
from p2pkit.protocols.ping import PROTOCOL_ID as PING
from p2pkit.protocols.ping import ping
from p2pkit.testing.memory_muxed import memory_builder


async def test_order_per_connection_across_trims_and_slow_subscriber(make_host, caplog):
    caplog.set_level(logging.WARNING, logger="p2pkit")
    server = (
        memory_builder()
        .connection_manager(
            low_water=2, high_water=4, grace_period=0.0, silence_period=0.0, check_interval=0.05
        )
        .build()
    )
    slow = server.events.subscribe(Event, maxsize=3)  # never read
    events = server.events.subscribe(Connected, Disconnected, Listen, ListenClose)
    async with server:
        bound = await server.listen("/memory/0")
        ev = await events.get(5)
        assert isinstance(ev, Listen) and list(ev.addrs) == bound
        clients = [await make_host(listen=False) for _ in range(8)]
        addr = server.addrs_with_peer_id[0]
        await asyncio.gather(*(c.connect(addr) for c in clients))
        async with asyncio.timeout(10):
            while len(server.connections()) > 2:
                await asyncio.sleep(0.02)
        # The host kept working while a subscriber was stuck.
        kept = server.connections()
        assert len(kept) == 2
        assert len(await ping(await kept[0].new_stream(PING), 1)) == 1
    assert slow.dropped > 0
    assert caplog.text.count("slow event subscriber") >= 1

    seen: dict[int, list[str]] = {}
    closed = []
    while (ev := events.get_nowait()) is not None:
        if isinstance(ev, Connected | Disconnected):
            seen.setdefault(id(ev.connection), []).append(type(ev).__name__)
        elif isinstance(ev, ListenClose):
            closed.append(ev)  # stop(): listeners close first, then connections
    assert len(closed) == 1 and list(closed[0].addrs) == bound
    assert len(seen) == 8
    # Every connection: exactly Connected then Disconnected (trimmed or closed by stop).
    assert all(kinds == ["Connected", "Disconnected"] for kinds in seen.values())


def test_sync_listener_never_misses_and_never_raises(caplog):
    from p2pkit.events import EventBus

    bus = EventBus(default_queue_size=1)
    sub = bus.subscribe(Listen)
    got: list[Event] = []
    remove = bus.add_listener(got.append, Listen)

    def broken(event: Event) -> None:
        raise RuntimeError("boom")

    bus.add_listener(broken)
    for _ in range(5):
        bus.emit(Listen(()))
    assert len(got) == 5  # the listener saw every event ...
    assert sub.dropped == 4  # ... while the bounded subscription dropped
    assert caplog.text.count("RuntimeError: boom") == 5  # logged, never raised
    remove()
    bus.emit(Listen(()))
    assert len(got) == 5


async def test_peerstore_filled_through_the_bus(make_host):
    a = await make_host()
    b = await make_host(listen=False)
    conn = await b.connect(a.addrs_with_peer_id[0])
    # Connected -> key and dialed address recorded by the host's bus listener
    assert b.peerstore.public_key(a.peer_id) == conn.remote_public_key
    assert conn.remote_addr in b.peerstore.addrs(a.peer_id)
