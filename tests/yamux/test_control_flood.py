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
from collections.abc import AsyncIterator

import pytest

from p2pkit_yamux import YamuxConnection, YamuxControlFlood, YamuxMuxer, YamuxOptions
from p2pkit_yamux import frames as fr
from p2pkit_yamux.session import MAX_QUEUED_REPLIES

from ..muxer_flood import HIGH_WATER, FloodListener, flood_listener

OPTIONS = YamuxOptions(keepalive_interval=0, ping_on_start=False, close_timeout=1.0)
#: What the listener may queue for one hostile connection: its high-water mark, one batch
#: of replies, and the replies it sends while blocked before giving up.
BOUND = HIGH_WATER + (MAX_QUEUED_REPLIES + OPTIONS.max_blocked_control_frames) * fr.HEADER_SIZE


@pytest.fixture
async def listener() -> AsyncIterator[FloodListener]:
    async with flood_listener(YamuxMuxer(OPTIONS)) as lst:
        yield lst


async def test_ping_flood_without_reading_is_bounded_then_closed(
    listener: FloodListener,
) -> None:
    assert await listener.good_echo(b"before") == b"before"
    sock, raw, session = await listener.hostile()
    assert isinstance(session, YamuxConnection)
    loop = asyncio.get_running_loop()
    chunk = fr.ping(7, fr.FLAG_SYN) * 1000
    peak = 0
    receive = session.data_received

    def measured(data: memoryview) -> None:  # the queue right after each reply batch
        nonlocal peak
        receive(data)
        peak = max(peak, raw.queued_bytes)

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
    assert await listener.good_echo(b"after" * 1000) == b"after" * 1000


async def test_pings_answered_while_the_peer_reads(listener: FloodListener) -> None:
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
        assert isinstance(session, YamuxConnection)
        assert not session.is_closed and session.session.dropped_pings == 0
    finally:
        conn.reset()
