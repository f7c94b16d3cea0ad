"""ReadBuffer: ordering, partial reads, EOF, failure, and credit returned exactly once."""

from __future__ import annotations

import asyncio

import pytest

from p2pkit.errors import StreamReset
from p2pkit.io import ReadBuffer, WriteGate


async def test_read_order_partial_and_eof():
    credit: list[int] = []
    buf = ReadBuffer(on_consume=credit.append)
    buf.feed(b"hello ")
    buf.feed(b"world")
    assert await buf.read(3) == b"hel"
    assert await buf.read(100) == b"lo world"
    buf.feed_eof()
    assert await buf.read() == b""
    assert sum(credit) == 11


async def test_unread_credit_counted_once():
    credit: list[int] = []
    buf = ReadBuffer(on_consume=credit.append)
    buf.feed(b"abcdef")
    data = await buf.read()
    buf.unread(data[2:])
    assert await buf.read() == b"cdef"
    assert sum(credit) == 6


async def test_waiting_reader_woken_and_fail_drops_data():
    buf = ReadBuffer()
    task = asyncio.ensure_future(buf.read())
    await asyncio.sleep(0)
    buf.feed(b"x")
    assert await task == b"x"
    buf.feed(b"dropped")
    buf.fail(StreamReset("reset"))
    with pytest.raises(StreamReset):
        await buf.read()
    buf.feed(b"late")  # tolerated, ignored
    assert buf.size == 0


async def test_write_gate():
    gate = WriteGate()
    await gate.wait()
    gate.pause()
    waiter = asyncio.ensure_future(gate.wait())
    await asyncio.sleep(0)
    assert not waiter.done()
    gate.resume()
    await waiter
    gate.pause()
    waiter = asyncio.ensure_future(gate.wait())
    await asyncio.sleep(0)
    gate.close(ConnectionError("gone"))
    with pytest.raises(ConnectionError):
        await waiter


async def test_small_reads_of_large_chunks_and_unread_in_between():
    credit: list[int] = []
    buf = ReadBuffer(on_consume=credit.append)
    blob = bytes(range(256)) * 4096  # 1 MiB
    buf.feed(blob)
    buf.feed(b"tail")
    out = [await buf.read(1000) for _ in range(10)]
    buf.unread(out[-1])
    rest = b""
    while buf.size:
        rest += await buf.read(65536)
    assert b"".join(out[:-1]) + rest == blob + b"tail"
    assert sum(credit) == len(blob) + 4


async def test_small_chunks_are_coalesced_and_read_back_as_bytes() -> None:
    from p2pkit.io import SMALL_CHUNK, SMALL_TAIL_LIMIT

    consumed: list[int] = []
    buf = ReadBuffer(on_consume=consumed.append)
    for i in range(20_000):
        buf.feed(bytes([i % 251]))
    big = bytes(SMALL_CHUNK) + b"!"
    buf.feed(big)
    buf.feed(b"tail")
    # 20000 one-byte chunks held in a couple of coalesced tails, not 20000 objects
    assert len(buf._chunks) <= 20_000 // SMALL_TAIL_LIMIT + 4
    part = buf.read_nowait(3)
    assert type(part) is bytes and part == bytes([0, 1, 2])
    rest = buf.read_nowait(20_000 - 3)
    assert type(rest) is bytes and rest == bytes(i % 251 for i in range(3, 20_000))
    assert buf.read_nowait(len(big)) is big  # a large chunk is handed out as it came
    assert buf.read_nowait() == b"tail"
    assert sum(consumed) == 20_000 + len(big) + 4
