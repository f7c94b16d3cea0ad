"""One-byte STREAM frames are held as a few coalesced chunks, not one object per byte.

A peer sending a stream's bytes one per STREAM frame (each its own in-order delivery
from aioquic) used to leave a ``bytes`` object per byte in the reader's queue: ~40
times the bytes counted by the memory reservation.  The dialer here sends that way
through its own aioquic sender (every pending range one byte long).
"""

from __future__ import annotations

import asyncio
from typing import Any

from .conftest import quic_pair

SIZE = 32 * 1024


def _send_one_byte_frames(conn: Any, data: bytes) -> int:
    session = conn.muxed
    quic = session.quic
    sid = quic.get_next_available_stream_id()
    quic.send_stream_data(sid, data, end_stream=True)
    pending = quic._streams[sid].sender._pending
    pending._RangeSet__ranges[:] = [range(o, o + 1) for o in range(len(data))]
    session.schedule_transmit()
    return int(sid)


async def test_one_byte_frames_are_coalesced(transports: Any) -> None:
    client, server = await quic_pair(transports(), transports())
    data = bytes(i % 251 for i in range(SIZE))
    _send_one_byte_frames(client, data)
    stream = await asyncio.wait_for(server.muxed.accept_stream(), 5)
    async with asyncio.timeout(30):  # 32 Ki one-byte frames: ~11 s on a loaded machine
        while stream._buffered < SIZE:  # the application has not read yet
            await asyncio.sleep(0.01)
    assert len(stream._chunks) <= 8, len(stream._chunks)
    got = bytearray()
    async with asyncio.timeout(10):
        while chunk := await stream.read(1000):
            assert type(chunk) is bytes
            got += chunk
    assert bytes(got) == data
    client.muxed.abort()
    server.muxed.abort()
