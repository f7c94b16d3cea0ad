"""Multiaddr parsing and /p2p/ splitting for every address form (p2pkit.addrs)."""

from __future__ import annotations

import pytest
from multiaddr import Multiaddr

from p2pkit.addrs import expand_unspecified, split_peer, to_multiaddr
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
