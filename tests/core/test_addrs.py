"""Multiaddr parsing and /p2p/ splitting for every address form (p2pkit.addrs)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator

import pytest
from multiaddr import Multiaddr

from p2pkit import addrs
from p2pkit.addrs import expand_unspecified, local_ips, split_peer, to_multiaddr
from p2pkit.builder import HostBuilder
from p2pkit.crypto import generate_private_key
from p2pkit.errors import AddressError
from p2pkit.peer import PeerId

PEER = PeerId.from_public_key(generate_private_key("ed25519").public_key)


def test_to_multiaddr_accepts_text_bytes_and_multiaddr():
    text = "/ip4/127.0.0.1/tcp/4001"
    addr = Multiaddr(text)
    assert to_multiaddr(text) == addr
    assert to_multiaddr(addr.to_bytes()) == addr
    assert to_multiaddr(bytearray(addr.to_bytes())) == addr
    assert to_multiaddr(addr) is addr


@pytest.mark.parametrize(
    "bad", ["", "not a multiaddr", "/ip4/1.2.3", "/tcp", b"", b"\x00\x01", b"\xff\xff\xff", 42]
)
def test_malformed_addresses_are_address_errors(bad):
    with pytest.raises(AddressError):
        to_multiaddr(bad)


@pytest.mark.parametrize(
    "transport", ["/ip4/127.0.0.1/tcp/4001", "/ip6/::1/udp/1/quic-v1", "/dns4/example.com/tcp/1"]
)
def test_split_peer_component_style(transport):
    for form in (f"{transport}/p2p/{PEER}", Multiaddr(f"{transport}/p2p/{PEER}").to_bytes()):
        rest, peer = split_peer(to_multiaddr(form))
        assert rest == Multiaddr(transport)
        assert peer == PEER
    assert split_peer(Multiaddr(transport)) == (Multiaddr(transport), None)


@pytest.mark.parametrize("path", ["/tmp/x.sock", "/a/b/c d.sock", "/x"])
def test_split_peer_path_style_unix(path):
    text = f"/unix{path}/p2p/{PEER}"
    for form in (text, Multiaddr(text).to_bytes()):
        rest, peer = split_peer(to_multiaddr(form))
        assert peer == PEER
        assert rest == Multiaddr(f"/unix{path}")
        assert [p.name for p in rest.protocols()] == ["unix"]
    assert split_peer(Multiaddr(f"/unix{path}")) == (Multiaddr(f"/unix{path}"), None)


def test_split_peer_only_peer():
    assert split_peer(Multiaddr(f"/p2p/{PEER}")) == (None, PEER)


@pytest.mark.parametrize(
    "bad",
    [
        f"/ip4/1.2.3.4/tcp/1/p2p/{PEER}/p2p/{PEER}",
        f"/unix/tmp/x.sock/p2p/{PEER}/p2p/{PEER}",
        "/unix/tmp/x.sock/p2p/notapeerid",
        f"/p2p/{PEER}/ip4/1.2.3.4/tcp/1",
    ],
)
def test_split_peer_malformed(bad):
    with pytest.raises(AddressError):
        split_peer(to_multiaddr(bad))


async def test_host_connect_checks_the_peer_id_of_every_form(make_host):
    from p2pkit.errors import PeerIdMismatch

    a = await make_host()
    b = await make_host(listen=False)
    good = a.addrs_with_peer_id[0]
    wrong = Multiaddr(f"{a.listen_addrs[0]}/p2p/{PEER}")
    for form in (wrong, str(wrong), wrong.to_bytes()):
        with pytest.raises(PeerIdMismatch):
            await b.connect(form)
    for form in (b"\x00\x01", "", "/ip4/1.2.3", f"{good}/p2p/{PEER}"):
        with pytest.raises(AddressError):
            await b.connect(form)
    conn = await b.connect(good.to_bytes())
    assert conn.peer == a.peer_id


@pytest.mark.parametrize(
    "text",
    [
        # Found by fuzz/: a /p2p/ value that parses but is no peer id made every later
        # use of the address raise the multiaddr library's own (untyped) error.
        "/ip4/1.2.3.4/tcp/1/p2p/bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi",
        "/ip4/1.2.3.4/tcp/1/p2p/3yZe7d",
    ],
)
def test_p2p_value_that_is_no_peer_id_is_an_address_error(text: str) -> None:
    with pytest.raises(AddressError):
        to_multiaddr(text)


@pytest.mark.parametrize(
    "listen",
    [
        "/ip4/0.0.0.0/tcp/4001",
        "/ip4/0.0.0.0/udp/4001/quic-v1",
        "/ip4/0.0.0.0/tcp/4001/ws",
        "/ip6/::/udp/4001/quic-v1",
        "/ip6/::/tcp/4001/tls/ws",
    ],
)
def test_unspecified_listen_addresses_expand_with_every_component(listen: str) -> None:
    """0.0.0.0 / :: become loopback and this host's addresses, the rest kept as it was
    (protocols without a value, /quic-v1 and /ws, included)."""
    expanded = expand_unspecified(Multiaddr(listen))
    loopback = "/ip4/127.0.0.1" if listen.startswith("/ip4") else "/ip6/::1"
    rest = listen.split("/", 3)[3]
    assert str(expanded[0]) == f"{loopback}/{rest}"
    assert all(str(a).endswith(rest) for a in expanded)


@pytest.fixture
def fresh_caches() -> Iterator[None]:
    for cache in (addrs._local_ips, addrs._sources, addrs._expanded):
        cache.clear()
    yield
    for cache in (addrs._local_ips, addrs._sources, addrs._expanded):
        cache.clear()


@pytest.mark.parametrize("family", [socket.AF_INET, socket.AF_INET6])
def test_local_ips_are_this_hosts_and_need_no_name_lookup(family, monkeypatch, fresh_caches):
    """Loopback first, then the default route's source address: each one is assigned to
    this host (a socket binds to it).  No name is looked up (a lookup of the host name
    waited on DNS, on the event loop, for every identify answer)."""

    def no_lookup(*args: object, **kwargs: object) -> None:
        raise AssertionError("a name lookup")

    monkeypatch.setattr(socket, "getaddrinfo", no_lookup)
    monkeypatch.setattr(socket, "gethostbyname", no_lookup)
    ips = local_ips(family)
    assert ips[0] == ("127.0.0.1" if family == socket.AF_INET else "::1")
    assert len(set(ips)) == len(ips)
    for ip in ips:
        with socket.socket(family, socket.SOCK_DGRAM) as s:
            s.bind((ip, 0))


def test_local_ips_and_expansions_are_remembered(monkeypatch, fresh_caches):
    first = expand_unspecified(Multiaddr("/ip4/0.0.0.0/tcp/4001"))
    made: list[object] = []
    real = socket.socket
    monkeypatch.setattr(socket, "socket", lambda *a, **k: made.append(a) or real(*a, **k))
    for _ in range(100):
        assert expand_unspecified(Multiaddr("/ip4/0.0.0.0/tcp/4001")) == first
        local_ips(socket.AF_INET)
    assert made == []  # no probe socket within LOCAL_IPS_TTL
    monkeypatch.setattr(addrs, "LOCAL_IPS_TTL", 0.0)
    local_ips(socket.AF_INET)
    assert len(made) == 1  # expired: probed again


async def test_a_node_on_the_unspecified_address_announces_its_own_addresses(fresh_caches):
    """Identify from a node listening on 0.0.0.0 carries loopback and the host's route
    address, with the port it listens on."""
    def builder() -> HostBuilder:
        return HostBuilder().transport("tcp").security("noise").muxer("yamux")

    listener = await builder().listen("/ip4/0.0.0.0/tcp/0").build().start()
    dialer = await builder().build().start()
    try:
        port = listener.listen_addrs[0].value_for_protocol("tcp")
        conn = await dialer.connect(f"/ip4/127.0.0.1/tcp/{port}/p2p/{listener.peer_id}")
        async with asyncio.timeout(5):
            info = await dialer.identify.identify(conn)
        announced = {str(a) for a in info.multiaddrs()}
        assert announced == {f"/ip4/{ip}/tcp/{port}" for ip in local_ips(socket.AF_INET)}
    finally:
        await dialer.stop()
        await listener.stop()
