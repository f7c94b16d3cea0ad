"""Connection gater: every checkpoint over real loopback connections, and the allow/deny lists."""

from __future__ import annotations

import asyncio
import ipaddress
import logging

import pytest
from multiaddr import Multiaddr

from p2pkit.abc import ConnectionGater
from p2pkit.config import load_config
from p2pkit.crypto import generate_private_key
from p2pkit.errors import ConfigError, GatedError, P2PError
from p2pkit.gater import AllowDenyGater, ConnectionGated, GaterOptions
from p2pkit.peer import PeerId
from p2pkit.protocols.ping import PROTOCOL_ID as PING
from p2pkit.protocols.ping import ping
from p2pkit.testing.memory_muxed import memory_builder


class RecordingGater(ConnectionGater):
    """Records every checkpoint call; refuses at ``deny_at`` (a checkpoint name)."""

    def __init__(self, deny_at: str | None = None) -> None:
        self.deny_at = deny_at
        self.calls: list[str] = []

    def _decide(self, name: str) -> bool:
        self.calls.append(name)
        return name != self.deny_at

    def allow_dial_peer(self, peer):
        return self._decide("dial_peer")

    def allow_dial_addr(self, peer, addr):
        return self._decide("dial_addr")

    def allow_accept(self, local_addr, remote_addr):
        assert remote_addr is not None
        return self._decide("accept")

    def allow_secured(self, direction, peer, remote_addr):
        return self._decide(f"secured-{direction}")

    def allow_upgraded(self, conn):
        return self._decide(f"upgraded-{conn.direction}")


def gated_host(gater, listen=True):
    b = memory_builder().gater(gater)
    if listen:
        b.listen("/memory/0")
    return b.build()


async def test_checkpoint_order_when_all_allowed():
    sg, cg = RecordingGater(), RecordingGater()
    async with gated_host(sg) as server, gated_host(cg, listen=False) as client:
        conn = await client.connect(server.addrs_with_peer_id[0])
        assert len(await ping(await conn.new_stream(PING), 1)) == 1
        assert cg.calls == ["dial_peer", "dial_addr", "secured-outbound", "upgraded-outbound"]
        async with asyncio.timeout(5):
            while len(sg.calls) < 3:
                await asyncio.sleep(0.01)
        assert sg.calls == ["accept", "secured-inbound", "upgraded-inbound"]


@pytest.mark.parametrize(
    "deny_at", ["dial_peer", "dial_addr", "secured-outbound", "upgraded-outbound"]
)
async def test_outbound_checkpoints_refuse(deny_at):
    cg = RecordingGater(deny_at)
    async with gated_host(None) as server, gated_host(cg, listen=False) as client:
        with pytest.raises(ConnectionGated) as info:
            await client.connect(server.addrs_with_peer_id[0])
        assert info.value.checkpoint == deny_at.split("-")[0]
        assert cg.calls[-1] == deny_at
        assert client.connections() == []
        async with asyncio.timeout(5):  # nothing left behind on the other side
            while server.connections():
                await asyncio.sleep(0.01)
        if deny_at.startswith("dial"):
            assert server.swarm.rcmgr.system.conns_in == 0
        # Gating one dial does not harm a later allowed one.
        cg.deny_at = None
        assert (await client.connect(server.addrs_with_peer_id[0])).peer == server.peer_id


@pytest.mark.parametrize("deny_at", ["accept", "secured-inbound", "upgraded-inbound"])
async def test_inbound_checkpoints_refuse(deny_at, caplog):
    caplog.set_level(logging.INFO, logger="p2pkit")
    sg = RecordingGater(deny_at)
    async with gated_host(sg) as server, gated_host(None, listen=False) as client:
        try:
            conn = await client.connect(server.addrs_with_peer_id[0])
        except (P2PError, OSError):
            pass  # refused during the handshake: the client sees it fail
        else:
            # Refused after the client's upgrade finished: the connection dies at once.
            async with asyncio.timeout(5):
                while not conn.is_closed:
                    await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        assert server.connections() == []
        assert sg.calls[-1] == deny_at
        assert f"checkpoint '{deny_at.split('-')[0]}'" in caplog.text


async def test_allow_deny_lists_built_in():
    peer = PeerId.from_public_key(generate_private_key("ed25519").public_key)
    other = PeerId.from_public_key(generate_private_key("ed25519").public_key)
    g = AllowDenyGater.from_options(
        GaterOptions(deny_peers=[str(peer)], deny_cidrs=["10.0.0.0/8", "fd00::/8"])
    )
    assert not g.allow_dial_peer(peer) and g.allow_dial_peer(other)
    assert not g.allow_dial_addr(None, Multiaddr("/ip4/10.1.2.3/tcp/1"))
    assert not g.allow_accept(None, Multiaddr("/ip6/fd00::1/tcp/1"))
    assert g.allow_accept(None, Multiaddr("/ip4/192.168.1.1/tcp/1"))
    assert g.allow_dial_addr(None, Multiaddr("/dns4/example.com/tcp/1"))  # no IP: lists n/a
    g.unblock_peer(peer)
    assert g.allow_secured("inbound", peer, None)
    g.block_network("192.168.0.0/16")
    assert not g.allow_accept(None, Multiaddr("/ip4/192.168.1.1/tcp/1"))
    allow = AllowDenyGater(allow_peers=[peer], allow_networks=[ipaddress.ip_network("127.0.0.0/8")])
    assert allow.allow_dial_peer(peer) and not allow.allow_dial_peer(other)
    assert allow.allow_accept(None, Multiaddr("/ip4/127.0.0.5/tcp/1"))
    assert not allow.allow_accept(None, Multiaddr("/ip4/8.8.8.8/tcp/1"))


def test_gater_config_errors_and_toml(tmp_path):
    for bad in [{"deny_peers": ["nope"]}, {"deny_cidrs": ["10.0.0.0/33"]}, {"bogus": []}, 3]:
        with pytest.raises(ConfigError):
            load_config({"security": ["plaintext"], "gater": bad})
    toml = tmp_path / "c.toml"
    toml.write_text(
        '[p2pkit]\nsecurity = ["plaintext"]\n[p2pkit.gater]\ndeny_cidrs = ["127.0.0.0/8"]\n'
    )
    gater = load_config(str(toml)).gater
    assert isinstance(gater, AllowDenyGater)
    assert not gater.allow_accept(None, Multiaddr("/ip4/127.0.0.1/tcp/5"))


async def test_deny_list_over_loopback():
    server_key = generate_private_key("ed25519")
    server_id = PeerId.from_public_key(server_key.public_key)
    server = memory_builder().identity(server_key).listen("/memory/0").build()
    client = memory_builder().gater(deny_peers=[str(server_id)]).build()
    async with server, client:
        with pytest.raises(GatedError):
            await client.connect(server.addrs_with_peer_id[0])
        # Without the /p2p/ part the peer is learned in the handshake: "secured" refuses.
        with pytest.raises(ConnectionGated) as info:
            await client.connect(server.listen_addrs[0])
        assert info.value.checkpoint == "secured"
