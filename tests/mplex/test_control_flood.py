"""A peer that makes mplex reply (NewStream beyond ``max_streams``) and never reads.

Real loopback TCP: a listener runs mplex sessions (plaintext: the raw channel is the
secure channel) with an echo acceptor; the hostile peer is a bare socket that sends
NewStream frames the listener must refuse with a Reset, and never reads.  The replies
queued stay bounded and the session ends with MplexControlFlood; a good peer on another
connection is served before and after.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from p2pkit_mplex import Flag, MplexControlFlood, MplexMuxer, MplexOptions
from p2pkit_mplex.frames import encode_frame
from p2pkit_mplex.session import MAX_QUEUED_REPLIES

from ..muxer_flood import HIGH_WATER, FloodListener, flood_listener

OPTIONS = MplexOptions(max_streams=4)
#: A Reset for a stream id below 2**25 is at most 5 bytes; the listener queues at most
#: its high-water mark, one batch of replies and the replies it sends while blocked.
BOUND = HIGH_WATER + (MAX_QUEUED_REPLIES + OPTIONS.max_blocked_control_frames) * 5


@pytest.fixture
async def listener() -> AsyncIterator[FloodListener]:
    async with flood_listener(MplexMuxer(OPTIONS)) as lst:
        yield lst


async def test_refused_stream_flood_without_reading_is_bounded_then_closed(
    listener: FloodListener,
) -> None:
    assert await listener.good_echo(b"before") == b"before"
    sock, raw, session = await listener.hostile()
    peak = 0
    received = 0
    receive = session.data_received

    def measured(data: memoryview) -> None:  # the queue right after each reply batch
        nonlocal peak, received
        received += len(data)
        receive(data)
        peak = max(peak, raw.queued_bytes)

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
    assert await listener.good_echo(b"after" * 1000) == b"after" * 1000


async def test_refusals_answered_while_the_peer_reads(listener: FloodListener) -> None:
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
