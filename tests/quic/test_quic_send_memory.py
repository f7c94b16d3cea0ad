"""What a QUIC connection holds on the sending side is bounded, whatever the peer does.

aioquic keeps every byte a writer hands it until the peer acknowledges it.  A peer that
opens streams, asks for data (here: echo) and never reads the answers grants no more
credit; the bytes beyond its credit cannot leave.  Each stream may queue only
``CREDIT_AHEAD`` bytes beyond the peer's credit for it, and the connection only
``connection_send_buffer`` bytes not yet sent within that credit (p2pkit_quic.flow):
before, each stream could queue ``send_buffer`` (4 MiB), so 256 parked streams held
1 GiB of the listener's memory.

Also here: one writer waiting per stream, and what an established connection keeps
(no handshake buffers; counted in the process's connection tally).
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import pytest

from p2pkit.bufpool import connections as connection_tally
from p2pkit.host import Host
from p2pkit.protocols.echo import PROTOCOL_ID as ECHO
from p2pkit_quic.flow import CREDIT_AHEAD
from p2pkit_quic.release import POST_HANDSHAKE_CRYPTO_BUFFER

from .conftest import quic_pair, still_echoes

MiB = 1 << 20


def _quic(a: Host, b: Host) -> Any:
    (conn,) = a.connections(b.peer_id)
    return conn.muxed.quic  # type: ignore[attr-defined]


def _queued(a: Host, b: Host) -> int:
    """Bytes ``a``'s connection to ``b`` holds in aioquic, written and not acknowledged."""
    return sum(s.sender._buffer_stop - s.sender._buffer_start
               for s in _quic(a, b)._streams.values())


def _beyond_credit(a: Host, b: Host) -> int:
    """Bytes ``a``'s connection to ``b`` holds beyond the peer's credit for their stream."""
    return sum(max(0, s.sender._buffer_stop - s.max_stream_data_remote)
               for s in _quic(a, b)._streams.values())


async def test_parked_echo_streams_hold_little_on_the_listener(make_host):
    """48 echo streams of 256 KiB each, the answers never read, against a dialer that
    grants 2 MiB in all: 10 MiB of echo cannot leave the listener, and it holds at most
    its connection bound plus ``CREDIT_AHEAD`` per stream of it."""
    a = await make_host(quic={"connection_send_buffer": MiB})
    b = await make_host(listen=False, quic={"connection_window": 2 * MiB, "stream_window": MiB})
    conn = await b.connect(a.addrs_with_peer_id[0])
    n, size = 48, 256 * 1024
    streams = [await conn.new_stream([ECHO]) for _ in range(n)]
    for s in streams:
        await s.write(os.urandom(size))  # the listener reads it all: its window allows
    peak = 0
    loop = asyncio.get_running_loop()
    end = loop.time() + 2.0
    while loop.time() < end:  # bounded: 2 s of 10 ms samples
        peak = max(peak, _queued(a, b))
        await asyncio.sleep(0.01)
    bound = MiB + n * CREDIT_AHEAD + MiB  # + what is in flight within the dialer's credit
    assert peak <= bound, (peak, bound)
    assert peak >= MiB // 2  # the echo handlers did try to send (the test tests something)
    await still_echoes(a, await make_host(listen=False))  # another peer, meanwhile


async def test_a_stream_short_of_credit_blocks_no_other(make_host):
    """One stream's reader never reads (its writer waits for credit); another stream on
    the same connection goes on, even with a connection bound smaller than what the
    first has waiting: bytes beyond a stream's credit are its own bound's business."""
    a = await make_host(quic={"connection_send_buffer": 256 * 1024})
    stuck: list[Any] = []

    async def flood(stream: Any) -> None:
        stuck.append(stream)
        await stream.write(os.urandom(8 * MiB))  # blocks: the dialer grants 1 MiB

    a.set_stream_handler("/flood/1", flood)
    b = await make_host(listen=False, quic={"stream_window": MiB})
    conn = await b.connect(a.addrs_with_peer_id[0])
    parked = await conn.new_stream(["/flood/1"])
    await parked.write(b"go")  # the handler runs once the stream reaches the listener
    async with asyncio.timeout(5):  # the dialer's 1 MiB of credit is used up
        while _beyond_credit(a, b) < CREDIT_AHEAD:
            await asyncio.sleep(0.01)
    await asyncio.sleep(0.2)
    assert _beyond_credit(a, b) == CREDIT_AHEAD  # not 7 MiB: the writer waits
    assert _queued(a, b) <= CREDIT_AHEAD + 256 * 1024
    payload = os.urandom(2 * MiB)
    echo = await conn.new_stream([ECHO])

    async def send() -> None:
        await echo.write(payload)
        await echo.close_write()

    sender = asyncio.ensure_future(send())
    got = bytearray()
    async with asyncio.timeout(10):
        while chunk := await echo.read():
            got += chunk
        await sender
    assert bytes(got) == payload
    parked.reset()


async def test_a_second_writer_waiting_on_the_same_stream_is_refused(transports):
    """Two writers blocked on one stream: the second is refused (RuntimeError, as yamux
    refuses concurrent writers), not lost (it used to replace the first writer's wakeup,
    so one of them waited forever)."""
    client, server = await quic_pair(transports(stream_window=64 << 10), transports())
    async with asyncio.timeout(10):
        out = await client.muxed.open_stream()
        await out.write(b"\x00")
        inc = await server.muxed.accept_stream()
        assert await inc.readexactly(1) == b"\x00"
        first = asyncio.create_task(out.write(bytes(1 << 20)))  # far beyond the credit
        await asyncio.sleep(0.05)
        assert not first.done()
        with pytest.raises(RuntimeError):
            await out.write(bytes(1 << 20))
        received = 0
        while received < 1 << 20:
            received += len(await inc.read(1 << 16))
        await first
    client.muxed.abort()
    server.muxed.abort()


async def test_an_established_connection_keeps_no_handshake_buffers(transports):
    """aioquic gives each connection three 16 KiB TLS output buffers; once the handshake
    is complete they are shrunk (48 KiB of an idle connection's ~77 KiB), and the
    connection still works (TLS writes nothing more in QUIC)."""
    client, server = await quic_pair(transports(), transports())
    async with asyncio.timeout(10):
        for side in (client, server):
            buffers = side.muxed.quic._crypto_buffers
            assert all(b.capacity <= POST_HANDSHAKE_CRYPTO_BUFFER for b in buffers.values())
        out = await client.muxed.open_stream()
        await out.write(b"still works")
        inc = await server.muxed.accept_stream()
        assert await inc.readexactly(11) == b"still works"
    client.muxed.abort()
    server.muxed.abort()


async def test_quic_connections_count_in_the_process_connection_tally(transports):
    """So a burst of closed QUIC connections trims the heap as TCP's do
    (p2pkit.bufpool.ConnectionTally)."""
    before = connection_tally.live
    client, server = await quic_pair(transports(), transports())
    assert connection_tally.live == before + 2
    client.muxed.abort()
    async with asyncio.timeout(10):
        await server.muxed.wait_closed()
    assert connection_tally.live == before
