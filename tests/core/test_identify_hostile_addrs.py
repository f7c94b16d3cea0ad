"""Identify from a peer that sends undecodable addresses or a stale signed peer record.

py-multiaddr decodes binary addresses lazily, so a malformed one used to be accepted and
fail later: in identify itself (an unretrieved task error, the peer never identified),
in the peerstore and at the next dial.  Malformed addresses are now skipped where they
arrive, as go's identify does.  A signed peer record older than the last one received
is ignored (RFC 0003).
"""

from __future__ import annotations

import asyncio

import pytest
from multiaddr import Multiaddr

from p2pkit.addrs import to_multiaddr
from p2pkit.dialer import rank_addrs
from p2pkit.errors import AddressError
from p2pkit.events import PeerIdentified
from p2pkit.protocols.identify import PUSH_PROTOCOL_ID, IdentifyInfo
from p2pkit.protocols.peer_record import make_signed_peer_record, open_signed_peer_record
from p2pkit.varint import encode_uvarint

UNKNOWN_CODE = b"\xff\xff\xff\xff\x0f"  # protocol code 0xffffffff
NO_PORT = b"\x04\x7f\x00\x00\x01\x06"  # /ip4/127.0.0.1/tcp without its port
SHORT_IP4 = b"\x04\x7f\x00"  # 2 of /ip4's 4 bytes (py-multiaddr renders 0.0.127.0)
BAD = [UNKNOWN_CODE, NO_PORT, SHORT_IP4]
GOOD = Multiaddr("/ip4/9.9.9.9/tcp/9")


@pytest.mark.parametrize("raw", BAD)
def test_to_multiaddr_refuses_undecodable_bytes(raw: bytes) -> None:
    with pytest.raises(AddressError):
        to_multiaddr(raw)


def test_to_multiaddr_keeps_canonical_bytes() -> None:
    for text in ("/ip4/1.2.3.4/udp/1/quic-v1", "/ip6/::1/tcp/1/ws", "/dns4/a.example/tcp/2"):
        assert to_multiaddr(Multiaddr(text).to_bytes()) == Multiaddr(text)


def test_ranking_skips_an_address_that_does_not_decode() -> None:
    assert rank_addrs([Multiaddr(UNKNOWN_CODE), GOOD, Multiaddr(NO_PORT)]) == [GOOD]


def test_a_signed_record_keeps_its_good_addresses(make_host_key=None) -> None:
    from p2pkit.crypto import generate_private_key
    from p2pkit.peer import PeerId

    key = generate_private_key("ed25519")
    peer = PeerId.from_public_key(key.public_key)
    envelope = make_signed_peer_record(key, peer, [GOOD, Multiaddr(UNKNOWN_CODE)], 7)
    assert open_signed_peer_record(envelope).addrs == [GOOD]


async def _push(conn, info: IdentifyInfo) -> None:
    stream = await conn.new_stream([PUSH_PROTOCOL_ID])
    body = info.encode()
    await stream.write(encode_uvarint(len(body)) + body)
    await stream.close_write()


async def _until(predicate, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


async def test_undecodable_addresses_in_a_push_are_skipped(make_host) -> None:
    a = await make_host()
    b = await make_host(listen=False)
    errors: list[dict] = []
    asyncio.get_running_loop().set_exception_handler(lambda _loop, ctx: errors.append(ctx))
    conn = await b.connect(a.addrs_with_peer_id[0])
    await _until(lambda: PUSH_PROTOCOL_ID in a.peerstore.protocols(b.peer_id))
    seen = a.events.subscribe(PeerIdentified)
    # b pushes bad plain addresses and a signed record holding a bad one beside a good one
    record = make_signed_peer_record(b.private_key, b.peer_id, [GOOD, Multiaddr(SHORT_IP4)], 2**62)
    info = IdentifyInfo(
        listen_addrs=[*BAD, Multiaddr("/ip4/8.8.8.8/tcp/8").to_bytes()],
        observed_addr=NO_PORT,
        protocols=["/after/1.0.0"],
        signed_peer_record=record,
    )
    await _push(conn, info)
    async with asyncio.timeout(5):
        event = await seen.get()
    assert isinstance(event, PeerIdentified) and event.peer == b.peer_id
    assert "/after/1.0.0" in event.protocols and event.observed_addr is None
    assert a.peerstore.get_metadata(b.peer_id, "CertifiedAddrs") == [str(GOOD)]
    stored = a.peerstore.addrs(b.peer_id)
    assert GOOD in stored and Multiaddr("/ip4/8.8.8.8/tcp/8") in stored
    for addr in stored:
        to_multiaddr(addr.to_bytes())  # every stored address decodes
    assert not errors


async def test_an_older_signed_record_is_ignored(make_host) -> None:
    a = await make_host()
    b = await make_host(listen=False)
    conn = await b.connect(a.addrs_with_peer_id[0])
    await _until(lambda: PUSH_PROTOCOL_ID in a.peerstore.protocols(b.peer_id))
    await _until(lambda: a.peerstore.get_metadata(b.peer_id, "PeerRecordSeq") is not None)
    newer, older = Multiaddr("/ip4/5.5.5.5/tcp/5"), Multiaddr("/ip4/1.1.1.1/tcp/1")
    seq = 2**62  # above the host's own (time-based) sequence numbers
    await _push(conn, IdentifyInfo(signed_peer_record=make_signed_peer_record(
        b.private_key, b.peer_id, [newer], seq)))  # fmt: skip
    await _until(lambda: a.peerstore.get_metadata(b.peer_id, "PeerRecordSeq") == seq)
    seen = a.events.subscribe(PeerIdentified)
    await _push(conn, IdentifyInfo(protocols=["/later/1.0.0"], signed_peer_record=(
        make_signed_peer_record(b.private_key, b.peer_id, [older], seq - 1))))  # fmt: skip
    async with asyncio.timeout(5):
        await seen.get()  # the push was applied, all but its record
    assert "/later/1.0.0" in a.peerstore.protocols(b.peer_id)
    assert a.peerstore.get_metadata(b.peer_id, "PeerRecordSeq") == seq
    assert a.peerstore.get_metadata(b.peer_id, "CertifiedAddrs") == [str(newer)]


async def test_a_departed_peer_that_announced_too_much_leaves_bounded_state(make_host) -> None:
    """A peer answers identify with all a 64 KiB message holds (thousands of protocol
    ids and record addresses, a 20 KiB agent version), then leaves: the listener
    remembers it (it has an address to redial) within the per-peer bounds, as
    go-libp2p's identify and peerstore do, not the whole message (760 KiB per peer)."""
    from p2pkit.peerstore import MAX_ADDRS_PER_PEER, MAX_PROTOCOLS_PER_PEER
    from p2pkit.protocols.identify import MAX_MESSAGE_SIZE, MAX_VERSION_BYTES, PROTOCOL_ID

    a = await make_host()
    b = await make_host()
    record_addrs = [Multiaddr(f"/ip4/10.{i >> 8}.{i & 255}.1/tcp/{i + 1}") for i in range(1500)]
    info = IdentifyInfo(
        agent_version="v" * 20_000,
        protocol_version="p" * 10_000,
        public_key=b.private_key.public_key.to_protobuf(),
        listen_addrs=[addr.to_bytes() for addr in b.listen_addrs],
        protocols=[f"/p/{i}" for i in range(2000)],
        signed_peer_record=make_signed_peer_record(b.private_key, b.peer_id, record_addrs, 1),
    )
    message = info.encode()
    assert len(message) <= MAX_MESSAGE_SIZE

    async def answer(stream) -> None:
        await stream.write(encode_uvarint(len(message)) + message)
        await stream.close_write()

    b.set_stream_handler(PROTOCOL_ID, answer)
    seen = a.events.subscribe(PeerIdentified)
    await b.connect(a.addrs_with_peer_id[0])
    async with asyncio.timeout(5):
        while (await seen.get()).peer != b.peer_id:  # type: ignore[attr-defined]
            pass
    await b.stop()
    await _until(lambda: not a.swarm.tracks(b.peer_id))
    store = a.peerstore
    assert b.peer_id in store.peers()  # remembered: it has addresses to redial
    assert len(store.protocols(b.peer_id)) == MAX_PROTOCOLS_PER_PEER
    certified = store.get_metadata(b.peer_id, "CertifiedAddrs")
    assert isinstance(certified, list) and len(certified) == MAX_ADDRS_PER_PEER
    assert len(store.addrs(b.peer_id)) <= MAX_ADDRS_PER_PEER
    for key in ("AgentVersion", "ProtocolVersion"):
        value = store.get_metadata(b.peer_id, key)
        assert isinstance(value, str) and len(value.encode()) <= MAX_VERSION_BYTES


def test_only_the_first_listen_addresses_of_a_message_are_decoded() -> None:
    """Decoding an address costs ~20 us: a 64 KiB push of 5,000 addresses cost 100 ms
    of CPU each time a peer sent it.  Only the first MAX_LISTEN_ADDRS are decoded (as
    many as a peerstore keeps), malformed ones among them skipped."""
    from p2pkit.protocols.identify_message import MAX_LISTEN_ADDRS

    plain = [Multiaddr(f"/ip4/10.{i >> 8}.{i & 255}.1/tcp/1") for i in range(5000)]
    raw = [a.to_bytes() for a in plain]
    assert IdentifyInfo(listen_addrs=raw).multiaddrs() == plain[:MAX_LISTEN_ADDRS]
    mixed = [UNKNOWN_CODE, *raw]
    assert IdentifyInfo(listen_addrs=mixed).multiaddrs() == plain[: MAX_LISTEN_ADDRS - 1]


def test_only_the_first_entries_of_a_signed_record_are_decoded() -> None:
    """A record's signer may list thousands of malformed addresses ahead of good ones:
    only the first MAX_RECORD_ADDRS entries are tried (an envelope over the cache's size
    is verified and decoded at every push)."""
    from p2pkit.crypto import generate_private_key
    from p2pkit.peer import PeerId
    from p2pkit.protocols.peer_record import MAX_RECORD_ADDRS

    key = generate_private_key("ed25519")
    peer = PeerId.from_public_key(key.public_key)
    bad = [Multiaddr(UNKNOWN_CODE)] * (MAX_RECORD_ADDRS - 1)
    envelope = make_signed_peer_record(key, peer, [*bad, GOOD, Multiaddr("/ip4/1.1.1.1/tcp/1")], 1)
    assert open_signed_peer_record(envelope).addrs == [GOOD]
