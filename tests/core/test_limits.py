"""Resource limits: refuse the new connection/stream with a typed, logged reason; never
harm what exists.  Over real loopback connections."""

from __future__ import annotations

import asyncio
import logging

import pytest

from p2pkit.config import load_config
from p2pkit.crypto import generate_private_key
from p2pkit.errors import ConfigError, P2PError, ResourceLimitExceeded
from p2pkit.limits import Direction, LimitExceeded, ResourceLimits, check_stream, limits_from
from p2pkit.peer import PeerId
from p2pkit.protocols.echo import PROTOCOL_ID as ECHO
from p2pkit.protocols.ping import PROTOCOL_ID as PING
from p2pkit.protocols.ping import ping
from p2pkit.rcmgr import ResourceManager
from p2pkit.testing.memory_muxed import memory_builder


def _refused(rm: ResourceManager, direction: Direction) -> str:
    with pytest.raises(LimitExceeded) as info:
        rm.open_connection(direction, "127.0.0.1" if direction == "inbound" else None)
    return info.value.limit


def test_table_limits_in_the_resource_manager():
    """The ``[p2pkit.limits]`` connection limits, enforced by the resource manager and
    named in refusals as the user configured them."""
    rm = ResourceManager(limits_from(ResourceLimits(max_pending_inbound=2)))
    first, second = (rm.open_connection("inbound", "127.0.0.1") for _ in range(2))
    assert _refused(rm, "inbound") == "max_pending_inbound"  # both still handshaking
    rm.open_connection("outbound", None).close()  # our dials are no pending handshakes
    peer = PeerId.from_public_key(generate_private_key("ed25519").public_key)
    first.set_peer(peer)
    rm.open_connection("inbound", "127.0.0.1").close()  # a handshake slot came free

    rm = ResourceManager(limits_from(ResourceLimits(max_connections_per_peer=1)))
    first, second = (rm.open_connection("inbound", "127.0.0.1") for _ in range(2))
    first.set_peer(peer)
    with pytest.raises(LimitExceeded) as info:
        second.set_peer(peer)
    assert info.value.limit == "max_connections_per_peer"

    lim = ResourceLimits(max_connections=3, max_inbound_connections=2, max_outbound_connections=2)
    rm = ResourceManager(limits_from(lim))
    inbound = [rm.open_connection("inbound", "127.0.0.1") for _ in range(2)]
    assert _refused(rm, "inbound") == "max_inbound_connections"
    outbound = rm.open_connection("outbound", None)
    assert _refused(rm, "outbound") == "max_connections"
    assert _refused(rm, "inbound") == "max_connections"
    for scope in (*inbound, outbound):
        scope.close()
    outbound_two = [rm.open_connection("outbound", None) for _ in range(2)]
    assert _refused(rm, "outbound") == "max_outbound_connections"
    for scope in outbound_two:
        scope.close()
    assert rm.system.empty and rm.tracked_scopes == 0


def test_stream_check():
    assert check_stream(None, 10**6, "inbound") is None
    err = check_stream(4, 4, "outbound")
    assert isinstance(err, ResourceLimitExceeded) and err.limit == "max_outbound_streams_per_conn"
    assert "max_outbound_streams_per_conn=4" in str(err)
    with pytest.raises(ConfigError):
        ResourceLimits(max_connections=0)


def test_config_tables_and_muxer_memory(tmp_path):
    toml = tmp_path / "c.toml"
    toml.write_text(
        '[p2pkit]\nsecurity = ["plaintext"]\nmuxers = ["yamux", "mplex"]\nmax_pending_inbound = 7\n'
        "[p2pkit.limits]\nmax_connections = 20\nmax_muxer_memory_per_conn = 67108864\n"
    )
    cfg = load_config(str(toml))
    assert cfg.limits.max_connections == 20 and cfg.limits.max_pending_inbound == 7
    yamux, mplex = cfg.muxers
    assert yamux.options.max_session_receive_buffer == 64 << 20
    assert mplex.options.max_streams * mplex.options.max_stream_buffer <= 64 << 20
    with pytest.raises(ConfigError, match="max_stream_buffer"):
        load_config(
            {
                "security": ["plaintext"],
                "muxers": ["mplex"],
                "limits": {"max_muxer_memory_per_conn": 1 << 20},
            }
        )
    with pytest.raises(ConfigError):
        load_config({"security": ["plaintext"], "limits": {"max_conns": 1}})
    with pytest.raises(ConfigError):
        load_config({"security": ["plaintext"], "limits": {"max_connections": "20"}})


def _host(listen: bool = True, **limits):
    b = memory_builder().limits(**limits)
    b.option(enable_echo=True)
    if listen:
        b.listen("/memory/0")
    return b.build()


async def test_21st_connection_refused_when_max_is_20(make_host, caplog):
    caplog.set_level(logging.INFO, logger="p2pkit")
    async with _host(max_connections=20) as server:
        clients = [await make_host(listen=False) for _ in range(21)]
        addr = server.addrs_with_peer_id[0]
        conns = await asyncio.gather(*(c.connect(addr) for c in clients[:20]))
        assert len(server.connections()) == 20
        try:
            late = await clients[20].connect(addr)
        except (P2PError, OSError):
            pass
        else:  # if the refusal came after the client's upgrade, the connection dies
            async with asyncio.timeout(5):
                while not late.is_closed:
                    await asyncio.sleep(0.01)
        assert "max_connections=20" in caplog.text
        assert len(server.connections()) == 20
        # The existing ones are untouched and work.
        for conn in conns[:3] + conns[-2:]:
            assert len(await ping(await conn.new_stream(PING), 1)) == 1
        # A slot freed: the refused peer gets in.
        await clients[0].disconnect(server.peer_id)
        async with asyncio.timeout(5):
            while len(server.connections()) != 19:
                await asyncio.sleep(0.01)
        assert (await clients[20].connect(addr)).peer == server.peer_id


async def test_outbound_limit_refuses_dial(make_host):
    a, b = await make_host(), await make_host()
    async with _host(listen=False, max_outbound_connections=1) as client:
        await client.connect(a.addrs_with_peer_id[0])
        with pytest.raises(LimitExceeded) as info:
            await client.connect(b.addrs_with_peer_id[0])
        assert info.value.limit == "max_outbound_connections"
        assert len(client.connections()) == 1


async def _quiet(conn) -> None:
    """Wait for identify streams to finish so only the test's streams count."""
    async with asyncio.timeout(5):
        while conn.streams:
            await asyncio.sleep(0.01)


async def test_stream_limits_per_connection():
    async with (
        _host(max_inbound_streams_per_conn=2) as server,
        _host(listen=False, max_outbound_streams_per_conn=3) as client,
    ):
        conn = await client.connect(server.addrs_with_peer_id[0])
        await _quiet(conn)
        await asyncio.sleep(0.1)
        s1 = await conn.new_stream([ECHO, PING])
        s2 = await conn.new_stream([ECHO, PING])
        with pytest.raises(P2PError):  # the server resets the third inbound stream
            await conn.new_stream([ECHO, PING])
        # The open ones are unharmed.
        for s in (s1, s2):
            await s.write(b"hello")
            assert await s.read() == b"hello"
        # Our own outbound limit: three streams are open (the reset one is gone once
        # the reset arrives), so the fourth is refused locally.
        s3 = await conn.new_stream([PING], lazy=True)  # not negotiated: counts locally
        assert sum(1 for s in conn.streams if s.is_initiator) == 3
        with pytest.raises(LimitExceeded) as info:
            await conn.new_stream([PING])
        assert info.value.limit == "max_outbound_streams_per_conn"
        for s in (s1, s2, s3):
            await s.close()
