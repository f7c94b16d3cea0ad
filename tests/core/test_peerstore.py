"""Peerstore backends (memory and SQLite): one contract, plus persistence across restarts."""

from __future__ import annotations

import asyncio
import sys

import pytest
from multiaddr import Multiaddr

from p2pkit.config import load_config
from p2pkit.crypto import generate_private_key
from p2pkit.errors import ConfigError
from p2pkit.peer import PeerId
from p2pkit.peerstore import MAX_PROTOCOLS_PER_PEER, MemoryPeerstore
from p2pkit.peerstore_sqlite import SqlitePeerstore
from p2pkit.testing.memory_muxed import memory_builder


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["memory", "sqlite"])
def store_and_clock(request, tmp_path):
    clock = FakeClock()
    if request.param == "memory":
        store = MemoryPeerstore(clock=clock, max_addrs_per_peer=3)
    else:
        store = SqlitePeerstore(tmp_path / "ps.db", clock=clock, max_addrs_per_peer=3)
    yield store, clock
    store.close()


def new_peer():
    key = generate_private_key("ed25519")
    return PeerId.from_public_key(key.public_key), key.public_key


A1 = Multiaddr("/ip4/10.0.0.1/tcp/4001")
A2 = Multiaddr("/ip6/::1/tcp/4002")
A3 = Multiaddr("/ip4/10.0.0.3/tcp/4003")
A4 = Multiaddr("/ip4/10.0.0.4/tcp/4004")


def test_addrs_ttl_extend_and_bound(store_and_clock):
    store, clock = store_and_clock
    peer, _ = new_peer()
    store.add_addrs(peer, [A1], 10.0)
    store.add_addrs(peer, [A2], float("inf"))
    assert set(store.addrs(peer)) == {A1, A2}
    store.add_addrs(peer, [A1], 5.0)  # shorter TTL never shortens
    clock.now += 7.0
    assert A1 in store.addrs(peer)
    clock.now += 4.0
    assert store.addrs(peer) == [A2]
    store.add_addrs(peer, [A1, A3, A4], 100.0)  # bound of 3: soonest expiry dropped
    assert len(store.addrs(peer)) == 3 and A2 in store.addrs(peer)
    store.clear_addrs(peer)
    assert store.addrs(peer) == []


def test_update_addrs_moves_one_ttl_class(store_and_clock):
    """go-libp2p's UpdateAddrs: the connected TTL drops to the recently-connected one
    when the last connection closes; other TTLs (and permanent ones) are left alone."""
    from p2pkit.peerstore import CONNECTED_ADDR_TTL, RECENTLY_CONNECTED_ADDR_TTL

    store, clock = store_and_clock
    peer, _ = new_peer()
    other, _ = new_peer()
    store.add_addrs(peer, [A1, A2], CONNECTED_ADDR_TTL)
    store.add_addrs(peer, [A3], 3600.0)
    store.add_addrs(other, [A1], CONNECTED_ADDR_TTL)
    store.update_addrs(peer, CONNECTED_ADDR_TTL, RECENTLY_CONNECTED_ADDR_TTL)
    clock.now += RECENTLY_CONNECTED_ADDR_TTL - 1
    assert set(store.addrs(peer)) == {A1, A2, A3}
    clock.now += 2
    assert store.addrs(peer) == [A3]  # the hour-long TTL was not touched
    assert store.addrs(other) == [A1]  # nor another peer's addresses
    # A permanent address moves only when asked for the infinite class.
    store.add_addrs(peer, [A4], float("inf"))
    store.update_addrs(peer, CONNECTED_ADDR_TTL, 1.0)
    clock.now += 10_000
    assert store.addrs(peer) == [A4]
    store.update_addrs(peer, float("inf"), 5.0)
    clock.now += 6
    assert store.addrs(peer) == []


def test_update_addrs_after_re_adding(store_and_clock):
    """An address re-added with a longer TTL belongs to that TTL's class."""
    store, clock = store_and_clock
    peer, _ = new_peer()
    store.add_addrs(peer, [A1], 60.0)
    store.add_addrs(peer, [A1], 600.0)
    store.update_addrs(peer, 60.0, 1.0)  # A1 is in the 600 s class now
    clock.now += 100
    assert store.addrs(peer) == [A1]
    store.update_addrs(peer, 600.0, 1.0)
    clock.now += 2
    assert store.addrs(peer) == []


def test_sqlite_schema_1_file_is_migrated(tmp_path):
    """A file written before TTLs were stored opens, keeps its addresses, and works."""
    import sqlite3

    clock = FakeClock()
    peer, _ = new_peer()
    path = tmp_path / "v1.db"
    db = sqlite3.connect(path)
    db.executescript(
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
        "CREATE TABLE addrs (peer BLOB NOT NULL, addr BLOB NOT NULL, expires REAL,"
        " PRIMARY KEY (peer, addr));"
        "INSERT INTO meta VALUES ('schema_version', '1');"
    )
    db.execute(
        "INSERT INTO addrs VALUES (?, ?, ?)", (peer.to_bytes(), A1.to_bytes(), clock.now + 50)
    )
    db.commit()
    db.close()
    store = SqlitePeerstore(path, clock=clock)
    try:
        assert store.addrs(peer) == [A1]
        store.update_addrs(peer, 50.0, 1.0)  # no TTL recorded for the old row: untouched
        store.add_addrs(peer, [A2], 30.0)
        store.update_addrs(peer, 30.0, 1.0)
        clock.now += 2
        assert store.addrs(peer) == [A1]
        version = store.db.execute("SELECT value FROM meta WHERE key='schema_version'")
        assert version.fetchone()[0] == "2"
    finally:
        store.close()


def test_keys_protocols_metadata_peers(store_and_clock):
    store, _ = store_and_clock
    peer, key = new_peer()
    other, _ = new_peer()
    assert store.public_key(peer) == key  # ed25519 ids embed the key
    store.add_public_key(peer, key)
    assert store.public_key(peer) == key
    store.set_protocols(peer, ["/ipfs/id/1.0.0", "/ipfs/ping/1.0.0"])
    assert store.protocols(peer) == ["/ipfs/id/1.0.0", "/ipfs/ping/1.0.0"]
    assert store.protocols(other) == []
    store.put_metadata(peer, "AgentVersion", "js-libp2p/1.0")
    assert store.get_metadata(peer, "AgentVersion") == "js-libp2p/1.0"
    assert store.get_metadata(peer, "nope") is None
    store.add_addrs(other, [A1], 60.0)
    assert set(store.peers()) == {peer, other}


def test_protocols_are_bounded_per_peer(store_and_clock):
    """A peer may announce thousands of protocol ids (one 64 KiB identify message holds
    some 16,000): the store keeps the first MAX_PROTOCOLS_PER_PEER distinct ones that
    multistream-select can carry (go-libp2p's protobook keeps 128), in their order."""
    store, _ = store_and_clock
    peer, _ = new_peer()
    too_long = "/" + "x" * 1023  # 1024 bytes: no multistream message can carry it
    announced = ["/a/1.0.0", "/a/1.0.0", too_long, *(f"/p/{i}" for i in range(5000))]
    store.set_protocols(peer, announced)
    expected = ["/a/1.0.0", *(f"/p/{i}" for i in range(MAX_PROTOCOLS_PER_PEER - 1))]
    assert store.protocols(peer) == expected
    store.set_protocols(peer, ["/" + "y" * 1022])  # 1023 bytes: the longest that fits
    assert store.protocols(peer) == ["/" + "y" * 1022]


def test_a_trimmed_address_table_does_not_keep_its_peak_size():
    """A peer announcing thousands of addresses keeps max_addrs_per_peer of them, in a
    table sized for those: a dict never shrinks on deletion, and the trimmed one stayed
    sized for all of them (70 KiB for 1,500) while the peer was remembered."""
    store = MemoryPeerstore(max_addrs_per_peer=4)
    peer, _ = new_peer()
    many = [Multiaddr(f"/ip4/10.0.{i >> 8}.{i & 255}/tcp/1") for i in range(2000)]
    store.add_addrs(peer, many, 60.0)
    assert store.addrs(peer) == many[-4:]  # same expiry: the last ones given are kept
    assert sys.getsizeof(store._addrs[peer]) <= sys.getsizeof(dict.fromkeys(range(4)))


def test_rsa_key_persists(tmp_path):
    key = generate_private_key("rsa").public_key  # not embedded in the peer id
    peer = PeerId.from_public_key(key)
    store = SqlitePeerstore(tmp_path / "ps.db")
    store.add_public_key(peer, key)
    store.close()
    store = SqlitePeerstore(tmp_path / "ps.db")
    try:
        assert store.public_key(peer) == key
    finally:
        store.close()


def test_sqlite_survives_reopen_with_wall_clock_ttls(tmp_path):
    clock = FakeClock()
    path = tmp_path / "sub" / "ps.db"
    peer, key = new_peer()
    store = SqlitePeerstore(path, clock=clock)
    store.add_public_key(peer, key)
    store.add_addrs(peer, [A1], 60.0)
    store.add_addrs(peer, [A2], float("inf"))
    store.set_protocols(peer, ["/x/1"])
    store.put_metadata(peer, "n", {"a": [1, 2]})
    with pytest.raises(TypeError):
        store.put_metadata(peer, "bad", object())
    store.close()
    clock.now += 30.0
    store = SqlitePeerstore(path, clock=clock)
    assert store.peers() == [peer]
    assert store.addrs(peer) == [A1, A2]
    assert store.protocols(peer) == ["/x/1"]
    assert store.get_metadata(peer, "n") == {"a": [1, 2]}
    store.close()
    clock.now += 31.0  # A1's TTL ran out while "the node was down"
    store = SqlitePeerstore(path, clock=clock)
    assert store.addrs(peer) == [A2]
    store.close()
    with pytest.raises(ValueError):
        store.addrs(peer)


def test_config_selects_sqlite(tmp_path):
    cfg = load_config(
        {"security": ["plaintext"], "peerstore": {"name": "sqlite", "path": str(tmp_path / "p")}}
    )
    assert cfg.peerstore is not None and cfg.peerstore.spec.name == "sqlite"
    assert cfg.peerstore.options.path == str(tmp_path / "p")
    toml = tmp_path / "c.toml"
    toml.write_text(
        '[p2pkit]\nsecurity = ["plaintext"]\npeerstore = "sqlite"\n'
        f'[p2pkit.plugins.sqlite]\npath = "{tmp_path / "q"}"\n'
    )
    assert load_config(str(toml)).peerstore.options.path == str(tmp_path / "q")
    with pytest.raises(ConfigError):
        load_config({"security": ["plaintext"], "peerstore": {"name": "sqlite", "path": ""}})


def _sqlite_host(path, key, listen: bool):
    b = memory_builder().identity(key).peerstore("sqlite", path=str(path))
    if listen:
        b.listen("/memory/0")
    return b.build()


async def test_restarted_host_reconnects_from_sqlite_peerstore(make_host, tmp_path):
    server = await make_host()
    db = tmp_path / "node.db"
    key = generate_private_key("ed25519")
    async with _sqlite_host(db, key, listen=False) as node:
        await node.connect(server.addrs_with_peer_id[0])
        # identify fills protocols and listen addrs through the connection path
        async with asyncio.timeout(5):
            while not node.peerstore.protocols(server.peer_id):
                await asyncio.sleep(0.02)
    # A new process would start here: same identity, same file, no bootstrap address.
    async with _sqlite_host(db, key, listen=False) as node:
        assert server.peer_id in node.peerstore.peers()
        assert "/ipfs/id/1.0.0" in node.peerstore.protocols(server.peer_id)
        assert node.peerstore.get_metadata(server.peer_id, "AgentVersion") == "p2pkit/0.1.0"
        conn = await node.connect(server.peer_id)
        assert conn.peer == server.peer_id
        from p2pkit.protocols.ping import PROTOCOL_ID, ping

        assert len(await ping(await conn.new_stream(PROTOCOL_ID), 1)) == 1


async def test_host_downgrades_addresses_when_the_last_connection_closes(make_host):
    """While connected, the dialed address (and identify's) live CONNECTED_ADDR_TTL;
    after the last connection closes, RECENTLY_CONNECTED_ADDR_TTL (15 min)."""
    from p2pkit.peerstore import RECENTLY_CONNECTED_ADDR_TTL

    a = await make_host()
    b = await make_host(listen=False)
    clock = FakeClock()
    b.peerstore._clock = clock  # type: ignore[attr-defined]
    conn = await b.connect(a.addrs_with_peer_id[0])
    async with asyncio.timeout(5):
        while not b.peerstore.protocols(a.peer_id):  # identify has run
            await asyncio.sleep(0.01)
    dialed = a.listen_addrs[0]
    assert dialed in b.peerstore.addrs(a.peer_id)
    await conn.close()
    async with asyncio.timeout(5):
        while b.connections(a.peer_id):
            await asyncio.sleep(0.01)
    table = b.peerstore._addrs[a.peer_id]  # type: ignore[attr-defined]
    async with asyncio.timeout(5):  # the Disconnected event is handled: TTL downgraded
        while table[dialed][1] != RECENTLY_CONNECTED_ADDR_TTL:
            await asyncio.sleep(0.01)
    clock.now += RECENTLY_CONNECTED_ADDR_TTL - 1
    assert dialed in b.peerstore.addrs(a.peer_id)
    clock.now += 2
    assert b.peerstore.addrs(a.peer_id) == []


def test_collect_forgets_unused_peers_whole(store_and_clock):
    """go-libp2p's peerstore GC: a peer with no live address that the caller does not
    keep (not connected) is forgotten, key, protocols and metadata included."""
    store, clock = store_and_clock
    gone, gone_key = new_peer()
    kept, kept_key = new_peer()
    reachable, reachable_key = new_peer()
    for peer, key in ((gone, gone_key), (kept, kept_key), (reachable, reachable_key)):
        store.add_public_key(peer, key)
        store.set_protocols(peer, ["/ipfs/ping/1.0.0"])
        store.put_metadata(peer, "AgentVersion", "x")
    store.add_addrs(gone, [A1], 10.0)
    store.add_addrs(kept, [A2], 10.0)
    store.add_addrs(reachable, [A3], 100.0)
    clock.now += 11.0
    assert store.collect(lambda p: p == kept) == 1
    assert gone not in store.peers()
    assert store.protocols(gone) == [] and store.get_metadata(gone, "AgentVersion") is None
    assert {kept, reachable} <= set(store.peers())
    assert store.protocols(kept) == ["/ipfs/ping/1.0.0"]
    assert store.addrs(reachable) == [A3]


def test_collect_caps_remembered_peers(store_and_clock):
    """Beyond ``max_peers`` unkept peers, the ones whose addresses expire soonest go."""
    store, _ = store_and_clock
    store.max_peers = 3
    peers = [new_peer()[0] for _ in range(6)]
    for i, peer in enumerate(peers):
        store.add_addrs(peer, [A1], 100.0 + i)
    connected = peers[0]  # expires soonest, but kept
    assert store.collect(lambda p: p == connected) == 2
    assert set(store.peers()) == {connected, *peers[3:]}
    assert store.collect(lambda p: p == connected) == 0


def test_remove_peer(store_and_clock):
    store, _ = store_and_clock
    peer, key = new_peer()
    store.add_public_key(peer, key)
    store.add_addrs(peer, [A1], 100.0)
    store.set_protocols(peer, ["/x"])
    store.remove_peer(peer)
    assert peer not in store.peers() and store.addrs(peer) == [] and store.protocols(peer) == []


async def test_host_forgets_departed_peers(make_host):
    """Churn from strangers leaves no per-peer state: inbound peers that leave (no address
    to redial them by) are forgotten at once, keys and identify results included; the
    peers the host dialled are kept within the store's cap."""
    server = await make_host(peerstore={"name": "memory", "max_peers": 5})
    for _ in range(30):
        client = await make_host(listen=False)
        conn = await client.connect(server.addrs_with_peer_id[0])
        assert server.identify is not None and client.identify is not None
        await client.identify.identify(conn)
        await client.stop()
    async with asyncio.timeout(10):
        while server.connections() or len(server.peerstore.peers()) > 1:
            await asyncio.sleep(0.01)
    assert server.peerstore.peers() == [server.peer_id]
    assert not server.identify.results

    # Dialled peers keep their address (recently-connected TTL), up to max_peers.
    dialer = await make_host(listen=False, peerstore={"name": "memory", "max_peers": 5})
    targets = [await make_host() for _ in range(12)]
    for t in targets:
        conn = await dialer.connect(t.addrs_with_peer_id[0])
        await conn.close()
    async with asyncio.timeout(10):
        while dialer.connections():
            await asyncio.sleep(0.01)
    dialer.peerstore.collect(lambda p: p == dialer.peer_id)
    assert len(dialer.peerstore.peers()) <= 6
