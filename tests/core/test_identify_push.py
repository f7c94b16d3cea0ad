"""Identify: signed peer records, push on local changes, partial pushes -- over loopback."""

from __future__ import annotations

import asyncio
import logging
import sys

import pytest
from multiaddr import Multiaddr

from p2pkit.crypto import generate_private_key
from p2pkit.errors import ProtocolError
from p2pkit.events import PeerIdentified
from p2pkit.peer import PeerId
from p2pkit.peerstore import (
    MAX_ADDRS_PER_PEER,
    MAX_PROTOCOLS_PER_PEER,
    RECENTLY_CONNECTED_ADDR_TTL,
    MemoryPeerstore,
)
from p2pkit.protocols.identify import PUSH_PROTOCOL_ID, IdentifyInfo
from p2pkit.protocols.peer_record import (
    VerifiedRecords,
    make_signed_peer_record,
    open_signed_peer_record,
)
from p2pkit.varint import encode_uvarint

ADDRS = [Multiaddr("/ip4/1.2.3.4/tcp/4001"), Multiaddr("/ip6/::1/tcp/4002")]


@pytest.mark.parametrize("key_type", ["ed25519", "secp256k1", "ecdsa", "rsa"])
def test_signed_peer_record_roundtrip_and_rejections(key_type):
    key = generate_private_key(key_type)
    peer = PeerId.from_public_key(key.public_key)
    env = make_signed_peer_record(key, peer, ADDRS, 42)
    rec = open_signed_peer_record(env)
    assert (rec.peer, rec.seq, rec.addrs) == (peer, 42, ADDRS)
    # flip one bit of the signature (last bytes of the envelope)
    bad = env[:-1] + bytes([env[-1] ^ 1])
    with pytest.raises(ProtocolError, match="signature"):
        open_signed_peer_record(bad)
    # a record about someone else, signed by us
    other = PeerId.from_public_key(generate_private_key("ed25519").public_key)
    with pytest.raises(ProtocolError, match="not the record's peer"):
        open_signed_peer_record(make_signed_peer_record(key, other, ADDRS, 1))
    with pytest.raises(ProtocolError):
        open_signed_peer_record(b"\x0a\x02\x08")


def test_verified_records_remember_only_good_envelopes_and_stay_bounded():
    key = generate_private_key("ed25519")
    peer = PeerId.from_public_key(key.public_key)
    cache = VerifiedRecords(max_entries=2)
    env = make_signed_peer_record(key, peer, ADDRS, 1)
    first = cache.open(env)
    first.addrs.append(Multiaddr("/ip4/9.9.9.9/tcp/1"))  # a caller's change stays its own
    assert cache.open(env).addrs == ADDRS and len(cache) == 1
    bad = env[:-1] + bytes([env[-1] ^ 1])
    for _ in range(2):  # a bad envelope is verified (and refused) every time
        with pytest.raises(ProtocolError, match="signature"):
            cache.open(bad)
    assert len(cache) == 1
    for seq in (2, 3, 4):
        cache.open(make_signed_peer_record(key, peer, ADDRS, seq))
    assert len(cache) == 2 and cache.open(env).seq == 1  # evicted, verified afresh


def test_a_record_with_thousands_of_addresses_is_kept_bounded():
    """A signed record may list ~5,000 addresses (a 64 KiB identify message): the first
    64 that decode are taken (what a peerstore keeps per peer), and an envelope above
    8 KiB (no go- or js-libp2p peer sends one) is not remembered by the cache, which
    otherwise kept 256 such records (~250 KiB of multiaddrs each) of peers long gone."""
    key = generate_private_key("ed25519")
    peer = PeerId.from_public_key(key.public_key)
    many = [Multiaddr(f"/ip4/10.{i >> 8}.{i & 255}.1/tcp/{i + 1}") for i in range(3000)]
    env = make_signed_peer_record(key, peer, many, 1)
    assert len(env) > 8 * 1024
    assert open_signed_peer_record(env).addrs == many[:64]
    cache = VerifiedRecords()
    assert cache.open(env).addrs == many[:64] and len(cache) == 0
    small = make_signed_peer_record(key, peer, many[:64], 2)
    assert len(small) <= 8 * 1024  # 64 usual addresses fit: remembered
    assert cache.open(small).addrs == many[:64] and len(cache) == 1


async def _identified(host, peer, predicate=lambda e: True, timeout=5.0) -> PeerIdentified:
    sub = host.events.subscribe(PeerIdentified)
    try:
        async with asyncio.timeout(timeout):
            while True:
                ev = await sub.get()
                assert isinstance(ev, PeerIdentified)
                if ev.peer == peer and predicate(ev):
                    return ev
    finally:
        sub.close()


async def _until(predicate, timeout=5.0):
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


async def test_identify_fills_peerstore_with_certified_addrs(make_host):
    a = await make_host()
    b = await make_host(listen=False)
    waiter = asyncio.ensure_future(_identified(b, a.peer_id))
    conn = await b.connect(a.addrs_with_peer_id[0])
    ev = await waiter
    assert set(ev.listen_addrs) >= set(a.listen_addrs)
    assert ev.agent_version == "p2pkit/0.1.0" and ev.protocol_version == "ipfs/0.1.0"
    assert ev.observed_addr == conn.local_addr
    assert PUSH_PROTOCOL_ID in ev.protocols
    store = b.peerstore
    assert store.get_metadata(a.peer_id, "CertifiedAddrs") == [str(x) for x in a.listen_addrs]
    assert isinstance(store.get_metadata(a.peer_id, "PeerRecordSeq"), int)
    assert set(a.listen_addrs) <= set(store.addrs(a.peer_id))


async def test_push_on_protocol_and_address_changes(make_host):
    a = await make_host()
    b = await make_host(listen=False)
    await b.connect(a.addrs_with_peer_id[0])
    ident_a = a.identify
    # both sides identified each other (a must know b supports push)
    await _until(lambda: PUSH_PROTOCOL_ID in a.peerstore.protocols(b.peer_id))
    await _until(lambda: PUSH_PROTOCOL_ID in b.peerstore.protocols(a.peer_id))

    async def handler(stream):
        await stream.close()

    waiter = asyncio.ensure_future(_identified(b, a.peer_id, lambda e: "/new/1.0.0" in e.protocols))
    a.set_stream_handler("/new/1.0.0", handler)
    a.set_stream_handler("/new/2.0.0", handler)  # same burst: coalesced
    await waiter
    await _until(lambda: "/new/2.0.0" in b.peerstore.protocols(a.peer_id))
    assert ident_a.pushes_sent == 1

    a.remove_stream_handler("/new/1.0.0")
    await _until(lambda: "/new/1.0.0" not in b.peerstore.protocols(a.peer_id))

    new = await a.listen("/memory/0")
    await _until(lambda: set(new) <= set(b.peerstore.addrs(a.peer_id)))
    certified = b.peerstore.get_metadata(a.peer_id, "CertifiedAddrs")
    assert isinstance(certified, list) and str(new[0]) in certified
    assert ident_a.pushes_sent == 3


async def test_partial_push_keeps_absent_fields_and_bad_record_ignored(make_host, caplog):
    caplog.set_level(logging.INFO, logger="p2pkit")
    a = await make_host()
    b = await make_host(listen=False)
    conn = await b.connect(a.addrs_with_peer_id[0])
    await _until(lambda: b.peerstore.protocols(a.peer_id))
    ident_b = b.identify
    # a push carrying only protocols
    ident_b._apply(conn, IdentifyInfo(protocols=["/only/1.0.0"]), push=True)
    assert b.peerstore.protocols(a.peer_id) == ["/only/1.0.0"]
    assert b.peerstore.get_metadata(a.peer_id, "AgentVersion") == "p2pkit/0.1.0"
    # a record signed by somebody else is ignored; the plain addresses still count
    liar = generate_private_key("ed25519")
    liar_id = PeerId.from_public_key(liar.public_key)
    fake = Multiaddr("/ip4/6.6.6.6/tcp/6")
    before = b.peerstore.get_metadata(a.peer_id, "CertifiedAddrs")
    info = IdentifyInfo(
        listen_addrs=[fake.to_bytes()],
        signed_peer_record=make_signed_peer_record(liar, liar_id, [fake], 99),
    )
    ident_b._apply(conn, info, push=True)
    assert "ignoring peer record" in caplog.text
    assert b.peerstore.get_metadata(a.peer_id, "CertifiedAddrs") == before
    assert fake in b.peerstore.addrs(a.peer_id)


async def test_identify_results_are_dropped_with_the_last_connection(make_host):
    a = await make_host()
    b = await make_host(listen=False)
    ident_b = b.identify
    conn = await b.connect(a.addrs_with_peer_id[0])
    await _until(lambda: a.peer_id in ident_b.results)
    await conn.close()
    await _until(lambda: a.peer_id not in ident_b.results and not b.connections())


async def test_a_result_landing_after_the_disconnect_gets_the_recently_connected_ttl(make_host):
    """Identify's read can finish as the connection closes, and its result is applied
    after the disconnect moved the peer's addresses to the recently-connected TTL: its
    addresses must not get the connected TTL (a year) then."""
    a = await make_host()
    b = await make_host(listen=False)
    now = [1_700_000_000.0]
    b.peerstore = MemoryPeerstore(clock=lambda: now[0])
    conn = await b.connect(a.addrs_with_peer_id[0])
    await _until(lambda: a.peer_id in b.identify.results)
    await conn.close()
    await _until(lambda: not b.swarm.tracks(a.peer_id))  # Disconnected has been handled
    late = Multiaddr("/ip4/10.1.2.3/tcp/4001")
    assert b.identify is not None
    b.identify._apply(conn, IdentifyInfo(listen_addrs=[late.to_bytes()]))
    assert late in b.peerstore.addrs(a.peer_id)
    now[0] += RECENTLY_CONNECTED_ADDR_TTL + 1
    assert b.peerstore.addrs(a.peer_id) == []  # every address, the late one included
    assert a.peer_id not in b.identify.results  # nor is the result kept for a gone peer


async def test_identify_results_are_bounded(make_host):
    hub = await make_host()
    hub.identify.max_results = 1
    x = await make_host(listen=False)
    y = await make_host(listen=False)
    await x.connect(hub.addrs_with_peer_id[0])
    await _until(lambda: x.peer_id in hub.identify.results)
    await y.connect(hub.addrs_with_peer_id[0])
    await _until(lambda: y.peer_id in hub.identify.results)
    assert list(hub.identify.results) == [y.peer_id]  # the oldest went


async def test_a_push_trickled_a_byte_per_frame_is_applied(make_host):
    """The push is read into a growing bytearray (a peer sending it a byte per frame
    costs linear copying) and applied once whole."""
    a = await make_host()
    b = await make_host(listen=False)
    conn = await b.connect(a.addrs_with_peer_id[0])
    await _until(lambda: a.peerstore.protocols(b.peer_id))
    body = IdentifyInfo(protocols=["/trickled/1.0.0", *(f"/p/{i}" for i in range(100))]).encode()
    message = encode_uvarint(len(body)) + body
    stream = await conn.new_stream([PUSH_PROTOCOL_ID])
    for i in range(len(message)):
        await stream.write(message[i : i + 1])  # one yamux frame each
    await stream.close_write()
    await _until(lambda: "/trickled/1.0.0" in a.peerstore.protocols(b.peer_id))
    assert len(a.identify.results[b.peer_id].protocols) == 101  # the whole message
    assert a.peerstore.protocols(b.peer_id)[-1] == "/p/99"


async def test_what_is_kept_of_a_huge_identify_message_is_bounded(make_host):
    """A 64 KiB push of 3,000 protocol ids, 2,500 addresses and an oversized observed
    address: the result kept while the peer is connected holds what a peerstore would
    (128 ids, 64 addresses, the certified one first), not ~1 MiB of Python objects."""
    a = await make_host()
    b = await make_host(listen=False)
    conn = await b.connect(a.addrs_with_peer_id[0])
    await _until(lambda: b.peer_id in a.identify.results)
    certified = Multiaddr("/ip4/7.7.7.7/tcp/7")
    record = make_signed_peer_record(b.private_key, b.peer_id, [certified], 2**62)
    plain = [Multiaddr(f"/ip4/10.{i >> 8}.{i & 255}.1/tcp/1").to_bytes() for i in range(2500)]
    info = IdentifyInfo(
        protocols=[f"/p/{i}" for i in range(3000)],
        listen_addrs=plain,
        observed_addr=b"\x04" * 2000,
        signed_peer_record=record,
    )
    body = info.encode()
    assert 32 * 1024 < len(body) < 64 * 1024
    seen = asyncio.ensure_future(_identified(a, b.peer_id, lambda e: len(e.protocols) > 1))
    stream = await conn.new_stream([PUSH_PROTOCOL_ID])
    await stream.write(encode_uvarint(len(body)) + body)
    await stream.close_write()
    event = await seen
    kept = a.identify.results[b.peer_id]
    assert len(kept.protocols) == len(event.protocols) == MAX_PROTOCOLS_PER_PEER
    assert len(kept.listen_addrs) == MAX_ADDRS_PER_PEER and kept.observed_addr is None
    assert event.listen_addrs[0] == certified and len(event.listen_addrs) == MAX_ADDRS_PER_PEER
    stored = a.peerstore.addrs(b.peer_id)
    assert certified in stored and len(stored) == MAX_ADDRS_PER_PEER
    size = sum(map(sys.getsizeof, [*kept.protocols, *kept.listen_addrs]))
    assert size < 24 * 1024
