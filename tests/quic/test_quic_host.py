"""Hosts over QUIC on loopback: the host treats a QUIC connection like any other
(ping, echo, perf, identify with QUIC addresses, events, gater, limits, port reuse)."""

from __future__ import annotations

import asyncio
import os

import pytest
from multiaddr import Multiaddr

from p2pkit.crypto import generate_private_key
from p2pkit.errors import PeerIdMismatch, StreamReset
from p2pkit.events import Connected, Disconnected, PeerIdentified
from p2pkit.gater import ConnectionGated
from p2pkit.peer import PeerId
from p2pkit.protocols.echo import PROTOCOL_ID as ECHO
from p2pkit.protocols.perf import PROTOCOL_ID as PERF
from p2pkit.protocols.perf import perf
from p2pkit.protocols.ping import PROTOCOL_ID as PING
from p2pkit.protocols.ping import ping


async def _echo(host, peer, payload: bytes) -> bytes:
    stream = await host.new_stream(peer, [ECHO])
    await stream.write(payload)
    await stream.close_write()
    parts = []
    while chunk := await stream.read():
        parts.append(chunk)
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
    assert a_event.observed_addr == b.listen_addrs[0] or a_event.peer == b.peer_id
    assert PING in event.protocols
    (conn,) = a.connections(b.peer_id)
    assert conn.remote_addr == b.listen_addrs[0]


async def test_connected_and_disconnected_events_both_sides(make_host):
    a = await make_host()
    b = await make_host(listen=False)
    with a.events.subscribe(Connected, Disconnected) as sa, b.events.subscribe(
        Connected, Disconnected
    ) as sb:
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


async def test_inbound_stream_limit_resets_extra_streams(make_host):
    a = await make_host(limits={"max_inbound_streams_per_conn": 2})
    b = await make_host(listen=False)
    conn = await b.connect(a.addrs_with_peer_id[0])
    held = [await conn.new_stream(ECHO) for _ in range(2)]
    for s in held:
        await s.write(b"x")
        assert await s.readexactly(1) == b"x"
    with pytest.raises(StreamReset):
        extra = await conn.new_stream(ECHO)
        await extra.write(b"y")
        await extra.read()
    for s in held:
        await s.close()
    # the limit is about open streams: once they are done a new one works
    async with asyncio.timeout(5):
        while True:
            try:
                assert await _echo(b, a.peer_id, b"again") == b"again"
                break
            except StreamReset:
                await asyncio.sleep(0.05)
