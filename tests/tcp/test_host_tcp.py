"""Host-level behaviour that needs real sockets and a real muxer: TCP + plaintext +
yamux/mplex hosts on loopback (the rest of the host tests run in memory, tests/core)."""

from __future__ import annotations

import asyncio
import os
import socket

import pytest
from multiaddr import Multiaddr

from p2pkit.errors import DialError, HandshakeTimeout
from p2pkit.multistream import encode_message
from p2pkit.protocols.echo import PROTOCOL_ID as ECHO
from p2pkit.protocols.perf import PROTOCOL_ID as PERF
from p2pkit.protocols.perf import perf
from p2pkit.protocols.ping import PROTOCOL_ID as PING
from p2pkit.protocols.ping import ping

MUXERS = ["yamux", "mplex"]


@pytest.mark.parametrize("muxer", MUXERS)
async def test_connect_ping_echo_perf(make_host, muxer):
    a = await make_host(muxer=muxer)
    b = await make_host(muxer=muxer, listen=False)
    conn = await b.connect(a.addrs_with_peer_id[0])
    assert conn.peer == a.peer_id
    assert conn.muxer_protocol == f"/{muxer}/" + ("1.0.0" if muxer == "yamux" else "6.7.0")
    rtts = await ping(await conn.new_stream(PING), 3)
    assert len(rtts) == 3 and all(r > 0 for r in rtts)

    stream = await b.new_stream(a.peer_id, [ECHO])
    payload = os.urandom(300_000)
    await stream.write(payload)
    await stream.close_write()
    got = b""
    while chunk := await stream.read():
        got += chunk
    assert got == payload

    result = await perf(await conn.new_stream(PERF), 2_000_000, 3_000_000)
    assert result.upload_bytes == 2_000_000 and result.download_bytes == 3_000_000


async def test_dial_closed_port_is_dial_error(make_host):
    b = await make_host(listen=False)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DialError):
        await b.connect(f"/ip4/127.0.0.1/tcp/{port}")


async def _raw_connect(addr: Multiaddr) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host = addr.value_for_protocol("ip4")
    port = int(addr.value_for_protocol("tcp"))
    return await asyncio.open_connection(host, port)


@pytest.mark.parametrize(
    "garbage",
    [
        b"\x13/multistream/1.0.0\n\xff\xff\xff\xff\x0f",  # absurd length prefix
        b"GET / HTTP/1.1\r\n\r\n",  # wrong protocol entirely
        encode_message("/multistream/1.0.0") + b"\x7f" + b"a" * 200,  # never-ending message
    ],
)
async def test_garbage_peer_does_not_hurt_listener(make_host, garbage):
    a = await make_host(handshake_timeout=1.0)
    reader, writer = await _raw_connect(a.listen_addrs[0])
    writer.write(garbage)
    await writer.drain()
    # The listener drops us (EOF or reset) within the handshake timeout ...
    async with asyncio.timeout(5):
        try:
            while await reader.read(1024):
                pass
        except ConnectionResetError:
            pass
    writer.close()
    # ... and keeps serving others.
    b = await make_host(listen=False)
    assert len(await ping(await b.new_stream(a.addrs_with_peer_id[0], PING), 1)) == 1


async def test_silent_peer_times_out(make_host):
    a = await make_host(handshake_timeout=0.5)
    reader, writer = await _raw_connect(a.listen_addrs[0])
    async with asyncio.timeout(5):
        data = b""
        try:
            while chunk := await reader.read(1024):
                data += chunk
        except ConnectionResetError:
            pass
    writer.close()
    assert a.connections() == []


async def test_dial_to_silent_server_times_out(make_host):
    b = await make_host(listen=False, handshake_timeout=0.5)

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(HandshakeTimeout):
            await b.connect(f"/ip4/127.0.0.1/tcp/{port}")
    finally:
        server.close()
        await server.wait_closed()


async def test_open_stream_waiting_for_a_muxer_slot_is_bounded(make_host):
    """A muxer that cannot open a stream yet (yamux: every SYN slot waits for the peer's
    ACK) holds new_stream at most negotiation_timeout."""
    a = await make_host()
    b = await make_host(listen=False, negotiation_timeout=0.3)
    conn = await b.connect(a.addrs_with_peer_id[0])
    session = conn.muxed.session  # the yamux sans-IO state: fill every SYN slot
    # After the peer's first ACK (identify's) the slots grow from 10 to 256: wait for it,
    # or it may arrive after the 10 are filled and free new ones (a flaky pass).
    async with asyncio.timeout(5):
        while session.unacked_limit < session.options.max_outbound_unacked:
            await asyncio.sleep(0.01)
    while session.can_open:
        session.open_stream()  # SYNs never sent: no ACK will ever come
    loop = asyncio.get_running_loop()
    start = loop.time()
    with pytest.raises(TimeoutError):
        await conn.new_stream(ECHO)
    assert loop.time() - start < 3
    async with asyncio.timeout(3):  # no waiter is left behind (identify's ends too)
        while conn.muxed._open_waiters:
            await asyncio.sleep(0.02)
