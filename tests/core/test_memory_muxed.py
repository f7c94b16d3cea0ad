"""The in-memory native transport of p2pkit.testing: its muxer passes the muxer suite,
and hosts over it get the swarm's checks (peer id, gater, limits) like upgraded ones."""

from __future__ import annotations

import pytest
from multiaddr import Multiaddr

from p2pkit.crypto import generate_private_key
from p2pkit.errors import AddressError, DialError, PeerIdMismatch
from p2pkit.events import Connected
from p2pkit.gater import ConnectionGated
from p2pkit.peer import PeerId
from p2pkit.testing.memory_muxed import MEMORY_TRANSPORT, SECURITY_PROTOCOL, memory_muxed_pair
from p2pkit.testing.muxer_suite import MuxerSuite

OTHER = PeerId.from_public_key(generate_private_key("ed25519").public_key)


class TestMemoryMuxerSuite(MuxerSuite):
    large_transfer_size = 8 * 1024 * 1024

    @pytest.fixture
    def muxer_pair(self):
        async def make():
            return memory_muxed_pair()

        return make


def test_spec_is_a_transport_plugin():
    assert MEMORY_TRANSPORT.kind == "transport" and MEMORY_TRANSPORT.name == "memory"


async def test_native_connection_is_not_upgraded(make_host):
    a = await make_host()
    b = await make_host(listen=False)
    assert a.listen_addrs[0].protocols()[0].name == "memory"
    with b.events.subscribe(Connected) as sub:
        conn = await b.connect(a.addrs_with_peer_id[0])
        event = await sub.get(timeout=5)
    assert event.connection is conn
    assert conn.peer == a.peer_id and conn.secure is None
    assert conn.security_protocol == SECURITY_PROTOCOL
    assert b.peerstore.public_key(a.peer_id) == a.private_key.public_key
    stream = await conn.new_stream(["/ipfs/ping/1.0.0"])
    await stream.close()


async def test_native_dial_verifies_the_peer_id(make_host):
    a = await make_host()
    b = await make_host(listen=False)
    with pytest.raises(PeerIdMismatch):
        await b.connect(f"{a.listen_addrs[0]}/p2p/{OTHER}")
    with pytest.raises(DialError):
        await b.connect("/memory/999999999")
    assert not b.connections()


async def test_gater_secured_checkpoint_applies_to_native_connections(make_host):
    a = await make_host(gater={"deny_peers": []})
    b = await make_host(listen=False, gater={"deny_peers": [str(a.peer_id)]})
    with pytest.raises(ConnectionGated):
        await b.connect(a.addrs_with_peer_id[0])


async def test_path_style_address_peer_id_is_checked(make_host):
    a = await make_host(listen=False, plugins={"memory": {"protocol": "unix"}})
    b = await make_host(listen=False, plugins={"memory": {"protocol": "unix"}})
    path = f"/unix/tmp/p2pkit-test-{a.peer_id}.sock"
    await a.listen(path)
    with pytest.raises(PeerIdMismatch):
        await b.connect(f"{path}/p2p/{OTHER}")
    with pytest.raises(PeerIdMismatch):
        await b.connect(Multiaddr(f"{path}/p2p/{OTHER}").to_bytes())
    with pytest.raises(AddressError):
        await b.connect(f"{path}/p2p/{a.peer_id}/p2p/{a.peer_id}")
    conn = await b.connect(f"{path}/p2p/{a.peer_id}")
    assert conn.peer == a.peer_id
