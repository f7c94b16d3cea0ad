"""A peer that makes mplex reply (NewStream beyond ``max_streams``) and never reads.

Real loopback TCP: a listener runs mplex sessions (plaintext: the raw channel is the
secure channel) with an echo acceptor; the hostile peer is a bare socket that sends
NewStream frames the listener must refuse with a Reset, and never reads.  The replies
queued stay bounded and the session ends with MplexControlFlood; a good peer on another
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
from p2pkit_mplex import Flag, MplexConnection, MplexControlFlood, MplexMuxer, MplexOptions
from p2pkit_mplex.frames import encode_frame
from p2pkit_mplex.session import MAX_QUEUED_REPLIES
from p2pkit_tcp import TcpOptions, TcpTransport

HIGH_WATER = 64 * 1024
OPTIONS = MplexOptions(max_streams=4)
#: A Reset for a stream id below 2**25 is at most 5 bytes; the listener queues at most
#: its high-water mark, one batch of replies and the replies it sends while blocked.
BOUND = HIGH_WATER + (MAX_QUEUED_REPLIES + OPTIONS.max_blocked_control_frames) * 5


@dataclass
class Listener:
    transport: TcpTransport
    addr: Multiaddr
    sessions: list[tuple[RawConnection, MplexConnection]] = field(default_factory=list)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


async def _echo(session: MplexConnection) -> None:
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
    muxer = MplexMuxer(OPTIONS)

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
    session = MplexMuxer(OPTIONS).new_session(cast(SecureConnection, conn), is_initiator=True)
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


def _transport(conn: RawConnection) -> asyncio.Transport:
    """TcpConnection keeps its asyncio transport private; the test needs its queue."""
    transport = getattr(conn, "_transport", None)
    assert transport is not None
    return cast(asyncio.Transport, transport)


async def _connect_raw(lst: Listener) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # fill up fast: never read
    sock.setblocking(False)
    addr = lst.addr
    await asyncio.get_running_loop().sock_connect(
        sock, (addr.value_for_protocol("ip4"), int(addr.value_for_protocol("tcp")))
    )
    return sock


async def test_refused_stream_flood_without_reading_is_bounded_then_closed(
    listener: Listener,
) -> None:
    assert await _good_echo(listener, b"before") == b"before"
    sock = await _connect_raw(listener)
    async with asyncio.timeout(10):
        while len(listener.sessions) < 2:
            await asyncio.sleep(0.01)
    raw, session = listener.sessions[-1]
    transport = _transport(raw)
    # A small kernel send buffer, so replies queue in asyncio within a few batches.
    transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    peak = 0
    received = 0
    receive = session.data_received

    def measured(data: memoryview) -> None:  # the queue right after each reply batch
        nonlocal peak, received
        received += len(data)
        receive(data)
        peak = max(peak, transport.get_write_buffer_size())

    session.data_received = measured  # type: ignore[method-assign]
    loop = asyncio.get_running_loop()
    sent = 0
    try:
        async with asyncio.timeout(30):
            written = 0
            for _ in range(1000):  # at most 200k NewStream frames, 200 at a time
                chunk = b"".join(encode_frame(i, Flag.NEW_STREAM) for i in range(sent, sent + 200))
                await loop.sock_sendall(sock, chunk)
                sent += 200
                written += len(chunk)
                # Let the listener read each burst on its own: every read then refuses
                # fewer streams than one batch may (MAX_QUEUED_REPLIES), and it is the
                # bound on replies queued while we do not read that must end the flood.
                while received < written and not session.is_closed:
                    await asyncio.sleep(0)
                if session.is_closed:
                    break
            while not session.is_closed:  # in flight: the listener reads it (or times out)
                await asyncio.sleep(0.01)
    except (ConnectionResetError, BrokenPipeError):
        pass  # the listener aborted the connection while we were still writing
    finally:
        sock.close()
    assert peak < BOUND, (peak, BOUND)
    assert session.is_closed, f"not closed after {sent} NewStream frames, {peak} bytes queued"
    assert isinstance(session.ended_by, MplexControlFlood), session.ended_by
    assert "did not read" in str(session.ended_by)  # the write-blocked bound, not a batch
    assert await _good_echo(listener, b"after" * 1000) == b"after" * 1000


async def test_refusals_answered_while_the_peer_reads(listener: Listener) -> None:
    """The bound only applies while writes are blocked: a reading peer gets every Reset."""
    conn = await listener.transport.dial(listener.addr)
    try:
        opened = b"".join(encode_frame(i, Flag.NEW_STREAM) for i in range(4))
        await conn.write(opened)
        for start in range(4, 3000, 500):
            ids = range(start, start + 500)
            await conn.write(b"".join(encode_frame(i, Flag.NEW_STREAM) for i in ids))
            want = b"".join(encode_frame(i, Flag.RESET_RECEIVER) for i in ids)
            got = b""
            async with asyncio.timeout(10):
                while len(got) < len(want):
                    data = await conn.read()
                    assert data
                    got += data
            assert got == want
        assert not listener.sessions[-1][1].is_closed
    finally:
        conn.reset()
