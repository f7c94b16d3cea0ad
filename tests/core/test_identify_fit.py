"""Our identify message stays within 4 KiB (rust-libp2p's limit), addresses best first."""

from __future__ import annotations

import asyncio

from multiaddr import Multiaddr

from p2pkit.crypto import generate_private_key
from p2pkit.peer import PeerId
from p2pkit.protocols.identify import IdentifyInfo
from p2pkit.protocols.identify_fit import MAX_OWN_MESSAGE_SIZE, fit_addresses, rank_own_addrs
from p2pkit.protocols.peer_record import make_signed_peer_record, open_signed_peer_record


def test_addresses_rank_public_private_loopback_then_quic_tcp_ws() -> None:
    addrs = [
        Multiaddr("/ip4/127.0.0.1/tcp/1"),
        Multiaddr("/ip4/192.168.1.2/tcp/1/ws"),
        Multiaddr("/ip4/8.8.8.8/tcp/1"),
        Multiaddr("/ip4/192.168.1.2/udp/1/quic-v1"),
        Multiaddr("/ip6/2001:4860::1/udp/1/quic-v1"),
        Multiaddr("/dns4/example.com/tcp/1"),
        Multiaddr("/ip4/192.168.1.2/tcp/2"),
    ]
    assert [str(a) for a in rank_own_addrs(addrs)] == [
        "/ip6/2001:4860::1/udp/1/quic-v1",
        "/ip4/8.8.8.8/tcp/1",
        "/dns4/example.com/tcp/1",
        "/ip4/192.168.1.2/udp/1/quic-v1",
        "/ip4/192.168.1.2/tcp/2",
        "/ip4/192.168.1.2/tcp/1/ws",
        "/ip4/127.0.0.1/tcp/1",
    ]


def _info(key, peer, addrs, record_for):
    return IdentifyInfo(
        protocol_version="ipfs/0.1.0",
        agent_version="p2pkit/test",
        public_key=key.public_key.to_protobuf(),
        listen_addrs=[a.to_bytes() for a in addrs],
        observed_addr=Multiaddr("/ip4/9.9.9.9/tcp/9").to_bytes(),
        protocols=["/ipfs/id/1.0.0", "/ipfs/ping/1.0.0"],
        signed_peer_record=record_for(addrs),
    )


def test_a_message_over_4_kib_leaves_out_its_worst_addresses() -> None:
    key = generate_private_key("ed25519")
    peer = PeerId.from_public_key(key.public_key)
    signed: list[int] = []

    def record_for(addrs):
        signed.append(len(addrs))
        return make_signed_peer_record(key, peer, list(addrs), len(signed))

    loopback = [Multiaddr(f"/ip4/127.0.0.1/tcp/{2000 + i}") for i in range(150)]
    private = [Multiaddr(f"/ip4/10.0.0.{i}/udp/4001/quic-v1") for i in range(1, 60)]
    addrs = loopback + private
    info = _info(key, peer, addrs, record_for)
    assert len(info.encode()) > MAX_OWN_MESSAGE_SIZE + 1000
    fitted = fit_addresses(info, addrs, record_for)
    assert len(fitted.encode()) <= MAX_OWN_MESSAGE_SIZE
    kept = [Multiaddr(raw) for raw in fitted.listen_addrs]
    assert kept[: len(private)] == private  # the private QUIC ones first, all of them
    assert set(kept[len(private) :]) < set(loopback)
    assert fitted.signed_peer_record is not None
    assert open_signed_peer_record(fitted.signed_peer_record).addrs == kept[:64]
    assert len(fitted.encode()) > MAX_OWN_MESSAGE_SIZE - 100  # no more left out than needed
    assert len(signed) <= 3  # the whole list, then one or two trimmed ones
    small = _info(key, peer, private[:3], record_for)
    assert fit_addresses(small, private[:3], record_for) is small


async def test_a_host_on_many_addresses_is_identified_within_4_kib(make_host) -> None:
    """300 listening sockets: the peer gets a message of at most 4 KiB whose signed
    record certifies exactly the addresses it lists."""
    a = await make_host(transport="tcp")
    for _ in range(300):
        await a.listen("/ip4/127.0.0.1/tcp/0")
    assert len(a.listen_addrs) == 301
    info = a.identify.local_info(None)
    assert len(info.encode()) <= MAX_OWN_MESSAGE_SIZE
    assert 150 < len(info.listen_addrs) < 301
    b = await make_host(transport="tcp", listen=False)
    await b.connect(a.addrs_with_peer_id[0])
    async with asyncio.timeout(10):
        while a.peer_id not in b.identify.results:
            await asyncio.sleep(0.01)
    got = b.identify.results[a.peer_id]
    listed = [Multiaddr(raw) for raw in got.listen_addrs]  # the first 64 are kept
    assert listed == [Multiaddr(raw) for raw in info.listen_addrs[:64]]
    certified = b.peerstore.get_metadata(a.peer_id, "CertifiedAddrs")
    assert certified == [str(x) for x in listed]
