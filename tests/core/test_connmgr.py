"""Connection manager: pure trim selection, and trimming real loopback connections."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from p2pkit.config import load_config
from p2pkit.connmgr import BasicConnectionManager, ConnManagerOptions, PeerInfo, select_for_trim
from p2pkit.crypto import generate_private_key
from p2pkit.errors import ConfigError
from p2pkit.peer import PeerId
from p2pkit.testing.memory_muxed import memory_builder


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclasses.dataclass(eq=False)
class FakeConn:
    """A stand-in with the HostConnection shape (the pure part needs no socket)."""

    peer: PeerId
    n_streams: int = 0
    direction: str = "inbound"
    remote_addr: None = None
    local_addr: None = None
    opened_at: float = 0.0
    tags: dict[str, int] = dataclasses.field(default_factory=dict)
    closed: bool = False

    @property
    def streams(self) -> list[object]:
        return [object()] * self.n_streams

    @property
    def is_closed(self) -> bool:
        return self.closed

    async def close(self) -> None:
        self.closed = True


def new_peer() -> PeerId:
    return PeerId.from_public_key(generate_private_key("ed25519").public_key)


def test_select_lowest_score_then_fewest_streams_then_oldest():
    peers = [new_peer() for _ in range(4)]
    infos = {
        peers[0]: PeerInfo(0.0, [FakeConn(peers[0], n_streams=5)], {"a": 1}),
        peers[1]: PeerInfo(0.0, [FakeConn(peers[1], n_streams=0)], {"a": 1}),
        peers[2]: PeerInfo(0.0, [FakeConn(peers[2])], {"a": 0}),
        peers[3]: PeerInfo(0.0, [FakeConn(peers[3])], {"a": 50}),
    }
    out = select_for_trim(infos, low_water=1, grace_period=10.0, now=100.0)
    assert [c.peer for c in out] == [peers[2], peers[1], peers[0]]
    assert select_for_trim(infos, low_water=4, grace_period=10.0, now=100.0) == []


def test_select_skips_protected_and_young_and_closes_whole_peers():
    old, young, prot = new_peer(), new_peer(), new_peer()
    infos = {
        old: PeerInfo(0.0, [FakeConn(old), FakeConn(old)]),
        young: PeerInfo(95.0, [FakeConn(young)]),
        prot: PeerInfo(0.0, [FakeConn(prot)], protected={"keep"}),
    }
    out = select_for_trim(infos, low_water=0, grace_period=10.0, now=100.0)
    assert {c.peer for c in out} == {old} and len(out) == 2


def test_protected_and_young_peers_do_not_push_out_valued_ones():
    """go's BasicConnMgr rule: only candidates count against low_water (counting every
    connection closed every candidate, the most valued included, when protected or
    young peers were many)."""
    prot, valued, young1, young2 = new_peer(), new_peer(), new_peer(), new_peer()
    plain = [new_peer() for _ in range(3)]
    infos = {
        prot: PeerInfo(0.0, [FakeConn(prot)], protected={"keep"}),
        valued: PeerInfo(0.0, [FakeConn(valued)], {"v": 100}),
        young1: PeerInfo(99.0, [FakeConn(young1)]),
        young2: PeerInfo(99.0, [FakeConn(young2)]),
        **{p: PeerInfo(0.0, [FakeConn(p)]) for p in plain},
    }
    out = select_for_trim(infos, low_water=2, grace_period=10.0, now=100.0)
    assert len(out) == 2 and {c.peer for c in out} < set(plain)
    # Fewer candidates than low_water: nothing is trimmed at all.
    assert select_for_trim(infos, low_water=5, grace_period=10.0, now=100.0) == []


async def test_manager_watermarks_grace_silence_protect_and_tags():
    clock = FakeClock()
    cm = BasicConnectionManager(
        ConnManagerOptions(
            low_water=2, high_water=4, grace_period=10.0, silence_period=5.0, clock=clock
        )
    )
    peers = [new_peer() for _ in range(6)]
    conns = [FakeConn(p) for p in peers]
    cm.protect(peers[0], "a")
    cm.protect(peers[0], "b")
    cm.tag_peer(peers[1], "useful", 10)
    cm.upsert_tag(peers[1], "useful", lambda w: w + 5)
    assert cm.tags(peers[1]) == {"useful": 15}
    for c in conns:
        cm.connected(c)
    await asyncio.sleep(0)  # the automatic trim runs: everyone is in the grace period
    assert cm.trimmed == 0 and cm.connection_count == 6
    clock.now += 11.0
    # As go's BasicConnMgr: the 5 candidates (not protected, out of grace) are trimmed to
    # low_water of theirs; the protected peer does not count.
    assert len(cm.plan()) == 3
    assert await cm.trim() == 3  # on demand: ignores the silence period
    closed = {c.peer for c in conns if c.closed}
    assert peers[0] not in closed and peers[1] not in closed and len(closed) == 3
    for c in conns:
        if c.closed:
            cm.disconnected(c)
    assert cm.connection_count == 3
    # unprotect: still protected by the other tag, then not at all.
    assert cm.unprotect(peers[0], "a") is True
    assert cm.unprotect(peers[0], "b") is False
    assert not cm.is_protected(peers[0])
    # Above high again right after a trim: the silence period defers the automatic trim.
    more = [FakeConn(new_peer()) for _ in range(3)]
    clock.now += 1.0
    for c in more:
        cm.connected(c)
    await asyncio.sleep(0)
    assert not any(c.closed for c in more)
    clock.now += 20.0
    cm.connected(FakeConn(new_peer()))  # over high water, silence passed: trims
    for _ in range(10):
        await asyncio.sleep(0)
    assert cm.trimmed == 3 + 4  # 6 candidates (peers 0, 1, an old one, the 3): down to 2
    await cm.close()


def test_tags_of_peers_gone_are_forgotten_after_tag_retention():
    """Tagging every peer met (as a DHT or pubsub does) kept a tag table entry per peer
    for good once they left: now a peer's tags go tag_retention after its last
    connection closed, or after they were set on a peer that did not connect (as
    go-libp2p's BasicConnMgr drops them at the last disconnect and its early tags once
    past the grace period).  Connected peers keep theirs; protections stay."""
    clock = FakeClock()
    cm = BasicConnectionManager(ConnManagerOptions(tag_retention=60.0, clock=clock))
    stays = new_peer()
    cm.connected(FakeConn(stays))
    cm.tag_peer(stays, "useful", 10)
    back = new_peer()
    back_conn = FakeConn(back)
    cm.connected(back_conn)
    cm.tag_peer(back, "useful", 20)
    cm.protect(back, "keep")
    cm.disconnected(back_conn)
    for _ in range(500):  # strangers: connect, get tagged, leave
        peer = new_peer()
        conn = FakeConn(peer)
        cm.connected(conn)
        cm.upsert_tag(peer, "seen", lambda w: w + 1)
        cm.disconnected(conn)
    never = new_peer()
    cm.tag_peer(never, "early", 5)  # tagged before a dial that never succeeds
    assert cm.tagged_peers == 503
    clock.now += 30.0
    back_conn = FakeConn(back)
    cm.connected(back_conn)  # back within the retention: its tags are still there
    assert cm.tags(back) == {"useful": 20}
    clock.now += 31.0
    cm.disconnected(back_conn)  # the next departure sweeps; back's own time restarts
    assert cm.tagged_peers == 2
    assert cm.tags(stays) == {"useful": 10} and cm.tags(back) == {"useful": 20}
    assert cm.tags(never) == {}
    clock.now += 61.0
    cm.tag_peer(new_peer(), "x", 1)  # a tag set on an unconnected peer sweeps too
    assert cm.tags(back) == {} and cm.is_protected(back, "keep")
    assert cm.tags(stays) == {"useful": 10} and cm.tagged_peers == 2


def test_options_validation_and_config():
    with pytest.raises(ValueError):
        ConnManagerOptions(low_water=5, high_water=4)
    cfg = load_config(
        {
            "security": ["plaintext"],
            "connection_manager": {"low_water": 3, "high_water": 7, "grace_period": 1},
        }
    )
    assert cfg.connection_manager is not None
    assert cfg.connection_manager.options.high_water == 7
    assert cfg.connection_manager.options.grace_period == 1.0
    with pytest.raises(ConfigError):
        load_config({"security": ["plaintext"], "connection_manager": {"low_waterz": 3}})
    with pytest.raises(ConfigError):
        load_config({"security": ["plaintext"], "connection_manager": {"high_water": -1}})


async def _wait_for(predicate, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)


async def test_fifty_peers_trimmed_to_low_water_after_grace(make_host):
    clock = FakeClock()
    server = (
        memory_builder()
        .listen("/memory/0")
        .connection_manager(
            low_water=10,
            high_water=20,
            grace_period=30.0,
            silence_period=10.0,
            check_interval=0.05,
            clock=clock,
        )
        .build()
    )
    async with server:
        clients = [await make_host(listen=False) for _ in range(50)]
        cm = server.connmgr
        assert isinstance(cm, BasicConnectionManager)
        protected = [c.peer_id for c in clients[:3]]
        valued = [c.peer_id for c in clients[3:10]]
        for p in protected:
            cm.protect(p, "test")
        for p in valued:
            cm.tag_peer(p, "valuable", 100)
        addr = server.addrs_with_peer_id[0]
        await asyncio.gather(*(c.connect(addr) for c in clients))
        await _wait_for(lambda: len(server.connections()) == 50)
        await asyncio.sleep(0.3)  # several background checks: all peers in grace
        assert len(server.connections()) == 50 and cm.trimmed == 0

        clock.now += 31.0
        # As go's BasicConnMgr: the 47 candidates are trimmed to low_water (10) of theirs,
        # the valued first kept; the 3 protected peers come on top.
        await _wait_for(lambda: len(server.connections()) == 13)
        kept = {c.peer for c in server.connections()}
        assert kept > set(protected) | set(valued)
        # The trimmed clients saw their connection close.
        await _wait_for(lambda: sum(1 for c in clients if c.connections()) == 13)
        # One trim, not one per check: the silence period holds the ticker back.
        assert cm.trimmed == 37
