"""Hosts over QUIC on loopback: the host treats a QUIC connection like any other
(ping, echo, perf, identify with QUIC addresses, events, gater, limits, port reuse)."""

from __future__ import annotations

import asyncio
import os

import pytest
from multiaddr import Multiaddr

from p2pkit.builder import HostBuilder
from p2pkit.crypto import generate_private_key
from p2pkit.errors import PeerIdMismatch, StreamReset, StreamResetByLimit
from p2pkit.events import Connected, Disconnected, PeerIdentified
from p2pkit.gater import ConnectionGated
from p2pkit.peer import PeerId
from p2pkit.protocols.echo import PROTOCOL_ID as ECHO
from p2pkit.protocols.perf import PROTOCOL_ID as PERF
from p2pkit.protocols.perf import perf
from p2pkit.protocols.ping import PROTOCOL_ID as PING
from p2pkit.protocols.ping import ping
from tests.hosts import host_starter


async def _echo(host, peer, payload: bytes) -> bytes:
    """Write and read at once: a payload larger than the windows both ways (and what the
    echo handler holds) could not all be written before the echo is read."""
    stream = await host.new_stream(peer, [ECHO])

    async def send() -> None:
        await stream.write(payload)
        await stream.close_write()

    sender = asyncio.ensure_future(send())
    parts = []
    while chunk := await stream.read():
        parts.append(chunk)
    await sender
    return b"".join(parts)


async def test_ping_echo_perf(make_host):
    a = await make_host()
    b = await make_host(listen=False)
    conn = await b.connect(a.addrs_with_peer_id[0])
    assert conn.peer == a.peer_id
    assert conn.security_protocol == "/quic-v1" and conn.secure is None
    rtts = await ping(await conn.new_stream(PING), 3)
    assert len(rtts) == 3 and all(r > 0 for r in rtts)
    payloads = [os.urandom(1000 * (i + 1)) for i in range(20)]
    got = await asyncio.gather(*(_echo(b, a.peer_id, p) for p in payloads))
    assert got == payloads
    result = await perf(await conn.new_stream(PERF), 2_000_000, 3_000_000)
    assert result.upload_bytes == 2_000_000 and result.download_bytes == 3_000_000


async def test_identify_reports_quic_listen_and_observed_addrs(make_host):
    """b listens and dials from its listening socket: a observes b's listen address."""
    a = await make_host()
    b = await make_host()
    with a.events.subscribe(PeerIdentified) as a_ident, b.events.subscribe(PeerIdentified) as ident:
        await b.connect(a.addrs_with_peer_id[0])
        event = await ident.get(timeout=5)
        a_event = await a_ident.get(timeout=5)
    assert event.peer == a.peer_id
    assert a.listen_addrs[0] in event.listen_addrs
    assert event.observed_addr == b.listen_addrs[0]  # port reuse: the listening port
    assert a_event.peer == b.peer_id and a_event.observed_addr == a.listen_addrs[0]
    assert PING in event.protocols
    (conn,) = a.connections(b.peer_id)
    assert conn.remote_addr == b.listen_addrs[0]


async def test_connected_and_disconnected_events_both_sides(make_host):
    a = await make_host()
    b = await make_host(listen=False)
    with (
        a.events.subscribe(Connected, Disconnected) as sa,
        b.events.subscribe(Connected, Disconnected) as sb,
    ):
        await b.connect(a.addrs_with_peer_id[0])
        assert isinstance(await sa.get(timeout=5), Connected)
        assert isinstance(await sb.get(timeout=5), Connected)
        await b.disconnect(a.peer_id)
        assert isinstance(await sb.get(timeout=5), Disconnected)
        assert isinstance(await sa.get(timeout=5), Disconnected)  # CONNECTION_CLOSE arrived
    assert not a.connections() and not b.connections()


async def test_peer_id_is_checked(make_host):
    a = await make_host()
    b = await make_host(listen=False)
    other = PeerId.from_public_key(generate_private_key("ed25519").public_key)
    with pytest.raises(PeerIdMismatch):
        await b.connect(Multiaddr(f"{a.listen_addrs[0]}/p2p/{other}"))
    assert not b.connections()
    assert not b.swarm.transports[0]._endpoints  # the failed dial's socket is closed


async def test_gater_applies(make_host):
    a = await make_host()
    b = await make_host(listen=False, gater={"deny_peers": [str(a.peer_id)]})
    with pytest.raises(ConnectionGated):
        await b.connect(a.addrs_with_peer_id[0])
    assert not b.connections()


async def test_connection_manager_trims_quic_connections(make_host):
    server = await make_host(
        connection_manager={
            "low_water": 1,
            "high_water": 100,
            "grace_period": 0.0,
            "silence_period": 0.0,
        }
    )
    clients = [await make_host(listen=False) for _ in range(3)]
    server.connmgr.tag_peer(clients[0].peer_id, "keep", 100)
    for c in clients:
        await c.connect(server.addrs_with_peer_id[0])
    async with asyncio.timeout(5):
        while len(server.connections()) < 3:
            await asyncio.sleep(0.01)
    assert await server.connmgr.trim() == 2
    async with asyncio.timeout(5):  # the trimmed peers see their connection end
        while any(c.connections() for c in clients[1:]):
            await asyncio.sleep(0.01)
    assert [c.peer for c in server.connections()] == [clients[0].peer_id]


async def test_ipv6_loopback(make_host):
    a = await make_host(listen=False)
    try:
        await a.listen("/ip6/::1/udp/0/quic-v1")
    except Exception as exc:  # pragma: no cover - machine without ::1
        pytest.skip(f"IPv6 loopback unavailable: {exc}")
    b = await make_host(listen=False)
    conn = await b.connect(a.addrs_with_peer_id[0])
    assert conn.remote_addr is not None and conn.remote_addr.protocols()[0].name == "ip6"
    assert await _echo(b, a.peer_id, b"over ipv6") == b"over ipv6"


async def test_unread_data_is_reserved_and_a_refusal_resets_the_stream(make_host):
    """Bytes buffered unread count in the resource manager; past the per-peer memory
    limit the stream is reset (StreamResetByLimit), the connection goes on."""
    gate = asyncio.Event()
    a = await make_host(limits={"max_memory_per_peer": 1 << 20, "unlimited_networks": []})
    held: list = []

    async def hoard(stream) -> None:  # reads nothing until told
        held.append(stream)
        await gate.wait()

    a.set_stream_handler("/hoard/1", hoard)
    b = await make_host(listen=False)
    conn = await b.connect(a.addrs_with_peer_id[0])
    stream = await conn.new_stream(["/hoard/1"])
    with pytest.raises(StreamReset):
        async with asyncio.timeout(10):
            for _ in range(64):  # 4 MiB at most (the stream window): over the 1 MiB limit
                await stream.write(b"x" * 65536)
            await stream.read()
    with pytest.raises(StreamResetByLimit) as info:  # the listener's side: by the limit
        await held[0].read()
    assert info.value.__cause__ is not None
    assert info.value.__cause__.__traceback__ is None  # keeps no datagram's frames alive
    (a_conn,) = a.connections(b.peer_id)
    assert not a_conn.is_closed  # only the stream went
    gate.set()
    assert await _echo(b, a.peer_id, b"still works") == b"still works"


async def test_muxer_memory_limit_bounds_the_quic_windows(make_host):
    host = await make_host(limits={"max_muxer_memory_per_conn": 8 << 20})
    quic = next(t for t in host.swarm.transports if t.name == "quic")
    assert quic.options.connection_window == 8 << 20  # was 16 MiB
    assert quic.options.stream_window == 4 << 20  # fits already
    b = await make_host(listen=False)
    await b.connect(host.addrs_with_peer_id[0])
    payload = os.urandom(12 << 20)  # more than a window: credit must keep flowing
    assert await _echo(b, host.peer_id, payload) == payload


async def test_listening_on_the_unspecified_address():
    """/ip4/0.0.0.0/udp/0/quic-v1: the host lists loopback and its own addresses,
    /quic-v1 kept (the expansion once wrote /quic-v1/None, and listen_addrs raised)."""
    async with host_starter() as start:
        a = await start(HostBuilder().transport("quic").listen("/ip4/0.0.0.0/udp/0/quic-v1"))
        addrs = [str(x) for x in a.addrs_with_peer_id]
        assert addrs and all("/quic-v1/p2p/" in x for x in addrs), addrs
        loopback = next(x for x in a.addrs_with_peer_id if "/127.0.0.1/" in str(x))
        b = await start(HostBuilder().transport("quic"))
        conn = await b.connect(loopback)
        assert len(await ping(await conn.new_stream(PING), 1)) == 1
