"""Resource limits: refuse the new connection/stream with a typed, logged reason; never
harm what exists.  Over real loopback connections."""

from __future__ import annotations

import asyncio
import logging

import pytest

from p2pkit.config import load_config
from p2pkit.errors import ConfigError, P2PError, ResourceLimitExceeded
from p2pkit.limits import (
    ConnectionCounts,
    LimitExceeded,
    ResourceLimits,
    check_accept,
    check_dial,
    check_established,
    check_stream,
)
from p2pkit.protocols.echo import PROTOCOL_ID as ECHO
from p2pkit.protocols.ping import PROTOCOL_ID as PING
from p2pkit.protocols.ping import ping
from p2pkit.testing.memory_muxed import memory_builder


def test_pure_checks():
    lim = ResourceLimits(
        max_connections=3,
        max_inbound_connections=2,
        max_outbound_connections=2,
        max_connections_per_peer=1,
        max_pending_inbound=2,
    )
    c = ConnectionCounts()
    assert check_accept(lim, c) is None and check_dial(lim, c) is None
    c.pending_inbound = 2
    assert check_accept(lim, c).limit == "max_pending_inbound"
    c = ConnectionCounts(inbound=1, pending_inbound=1)
    assert check_accept(lim, c).limit == "max_inbound_connections"
    c = ConnectionCounts(inbound=1, outbound=1, pending_outbound=1)
    assert check_accept(lim, c).limit == "max_connections"
    assert check_dial(lim, c).limit == "max_connections"
    c = ConnectionCounts(outbound=2)
    assert check_dial(lim, c).limit == "max_outbound_connections"
    assert check_established(lim, ConnectionCounts(), "inbound", 1).limit == (
        "max_connections_per_peer"
    )
    assert check_established(lim, ConnectionCounts(inbound=2), "inbound", 0).limit == (
        "max_inbound_connections"
    )
    assert check_established(lim, ConnectionCounts(inbound=2), "outbound", 0) is None
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
