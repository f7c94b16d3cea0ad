"""A peer that floods Ping(SYN) frames and never reads: our replies stay bounded.

Real loopback TCP: a listener runs yamux sessions (plaintext, the raw channel is the
secure channel) with an echo acceptor; the hostile peer is a bare socket that writes
pings and never reads, so the listener's socket send buffer fills and its writes block.
Ping replies are then dropped, and the session ends with YamuxControlFlood once the
peer has sent ``max_blocked_control_frames`` more of them.  A good peer on another
connection is served before and after.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import cast

import pytest
from multiaddr import Multiaddr

from p2pkit.abc import RawConnection, SecureConnection
from p2pkit_tcp import TcpOptions, TcpTransport
from p2pkit_yamux import YamuxConnection, YamuxControlFlood, YamuxMuxer, YamuxOptions
from p2pkit_yamux import frames as fr
from p2pkit_yamux.session import MAX_QUEUED_REPLIES

HIGH_WATER = 64 * 1024
OPTIONS = YamuxOptions(keepalive_interval=0, ping_on_start=False, close_timeout=1.0)
#: What the listener may queue for one hostile connection: its high-water mark, one batch
#: of replies, and the replies it sends while blocked before giving up.
BOUND = HIGH_WATER + (MAX_QUEUED_REPLIES + OPTIONS.max_blocked_control_frames) * fr.HEADER_SIZE


@dataclass
class Listener:
    transport: TcpTransport
    addr: Multiaddr
    sessions: list[tuple[RawConnection, YamuxConnection]] = field(default_factory=list)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


async def _echo(session: YamuxConnection) -> None:
    while True:
        try:
            stream = await session.accept_stream()
        except Exception:
            return
        data = await stream.read()
        while data:
            await stream.write(data)
            data = await stream.read()
        await stream.close()


@pytest.fixture
async def listener() -> AsyncIterator[Listener]:
    transport = TcpTransport(TcpOptions(write_high_water=HIGH_WATER))
    box: list[Listener] = []
    muxer = YamuxMuxer(OPTIONS)

    def on_conn(conn: RawConnection) -> None:
        session = muxer.new_session(cast(SecureConnection, conn), is_initiator=False)
        box[0].sessions.append((conn, session))
        box[0].tasks.append(asyncio.get_running_loop().create_task(_echo(session)))

    lst = await transport.listen(Multiaddr("/ip4/127.0.0.1/tcp/0"), on_conn)
    box.append(Listener(transport, lst.addrs[0]))
    yield box[0]
    for _, session in box[0].sessions:
        session.abort()
    for task in box[0].tasks:
        task.cancel()
    await asyncio.gather(*box[0].tasks, return_exceptions=True)
    await lst.close()
    await transport.close()


async def _good_echo(lst: Listener, payload: bytes) -> bytes:
    conn = await lst.transport.dial(lst.addr)
    session = YamuxMuxer(OPTIONS).new_session(cast(SecureConnection, conn), is_initiator=True)
    try:
        stream = await session.open_stream()
        await stream.write(payload)
        await stream.close_write()
        got = b""
        async with asyncio.timeout(10):
            while chunk := await stream.read():
                got += chunk
        return got
    finally:
        await session.close()


def _queued(conn: RawConnection) -> int:
    """Bytes asyncio holds for the socket (TcpConnection keeps its transport private)."""
    transport = getattr(conn, "_transport", None)
    return transport.get_write_buffer_size() if transport is not None else 0


def _small_send_buffer(conn: RawConnection) -> None:
    """Shrink the listener's kernel send buffer (else it absorbs megabytes of replies
    before asyncio queues any), so the flood reaches the session in a few seconds."""
    transport = getattr(conn, "_transport", None)
    assert transport is not None
    transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)


async def test_ping_flood_without_reading_is_bounded_then_closed(listener: Listener) -> None:
    assert await _good_echo(listener, b"before") == b"before"
    addr = listener.addr
    host, port = addr.value_for_protocol("ip4"), int(addr.value_for_protocol("tcp"))
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # fill up fast: never read
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_connect(sock, (host, port))
    chunk = fr.ping(7, fr.FLAG_SYN) * 1000
    async with asyncio.timeout(10):  # the listener has the connection once it reads
        while len(listener.sessions) < 2:
            await asyncio.sleep(0.01)
    raw, session = listener.sessions[-1]
    _small_send_buffer(raw)
    peak = 0
    receive = session.data_received

    def measured(data: memoryview) -> None:  # the queue right after each reply batch
        nonlocal peak
        receive(data)
        peak = max(peak, _queued(raw))

    session.data_received = measured  # type: ignore[method-assign]
    sent = 0
    try:
        async with asyncio.timeout(30):
            for _ in range(1000):  # at most 1M pings, 12 MB
                await loop.sock_sendall(sock, chunk)
                sent += 1000
                if session.is_closed:
                    break
            while not session.is_closed:  # in flight: the listener reads it (or times out)
                await asyncio.sleep(0.01)
    except (ConnectionResetError, BrokenPipeError):
        pass  # the listener aborted the connection while we were still writing
    finally:
        sock.close()
    assert peak < BOUND, (peak, BOUND)
    assert session.is_closed, f"not closed after {sent} pings, {peak} bytes queued"
    assert isinstance(session.ended_by, YamuxControlFlood), session.ended_by
    assert "did not read" in str(session.ended_by)  # the write-blocked bound, not a batch
    assert session.session.dropped_pings > 0
    # the good peer is still served
    assert await _good_echo(listener, b"after" * 1000) == b"after" * 1000


async def test_pings_answered_while_the_peer_reads(listener: Listener) -> None:
    """The bound only applies while writes are blocked: a reading peer gets every ACK."""
    conn = await listener.transport.dial(listener.addr)
    try:
        for start in range(0, 5000, MAX_QUEUED_REPLIES):  # one batch of replies at a time
            values = range(start, min(start + MAX_QUEUED_REPLIES, 5000))
            await conn.write(b"".join(fr.ping(i, fr.FLAG_SYN) for i in values))
            want = b"".join(fr.ping(i, fr.FLAG_ACK) for i in values)
            got = b""
            async with asyncio.timeout(10):
                while len(got) < len(want):
                    data = await conn.read()
                    assert data
                    got += data
            assert got == want
        session = listener.sessions[-1][1]
        assert not session.is_closed and session.session.dropped_pings == 0
    finally:
        conn.reset()
