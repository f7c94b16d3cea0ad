"""The :class:`~p2pkit.abc.Channel` contract on a connected pair (:class:`ChannelSuite`).

Provide an async ``pair`` fixture yielding ``(initiator, responder)``; the suite closes
nothing itself, so the fixture cleans up (see
:func:`~p2pkit.testing.transport_helpers.dispose`).  Scenarios: roles, a 4 MiB echo both
ways, many small writes, half-close, unread, reset (pull and push), close with queued
data, drain, push mode after pull, pause and resume, EOF and loss delivered once,
backpressure.  :class:`~p2pkit.testing.transport_suite.TransportSuite` runs all of them
over a real dialed pair.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator

import pytest

from p2pkit.abc import Channel
from p2pkit.errors import ConnectionClosed, StreamClosed
from p2pkit.testing.transport_helpers import STEP, Collector, _pattern, read_all, read_n

__all__ = ["ChannelSuite"]


class ChannelSuite:
    """The :class:`~p2pkit.abc.Channel` contract on a connected pair."""

    signals_reset: bool = True
    """False for channels that cannot express a reset to the peer (it then sees EOF)."""

    @pytest.fixture
    async def pair(self) -> AsyncIterator[tuple[Channel, Channel]]:
        raise NotImplementedError("provide a `pair` fixture yielding (initiator, responder)")
        yield  # pragma: no cover

    async def test_roles(self, pair: tuple[Channel, Channel]) -> None:
        a, b = pair
        assert a.is_initiator is True
        assert b.is_initiator is False
        assert not a.closed and not b.closed

    async def test_bidirectional_echo_4mib(self, pair: tuple[Channel, Channel]) -> None:
        a, b = pair
        up, down = _pattern(4 << 20, 1), _pattern(4 << 20, 2)

        async def send(chan: Channel, data: bytes) -> None:
            view = memoryview(data)
            for i in range(0, len(data), 256 << 10):
                await chan.write(view[i : i + (256 << 10)])
            await chan.close_write()

        async with asyncio.timeout(STEP * 2):
            _, _, got_b, got_a = await asyncio.gather(
                send(a, up), send(b, down), read_all(b), read_all(a)
            )
        assert hashlib.sha256(got_b).digest() == hashlib.sha256(up).digest()
        assert hashlib.sha256(got_a).digest() == hashlib.sha256(down).digest()

    async def test_many_small_writes(self, pair: tuple[Channel, Channel]) -> None:
        a, b = pair
        data = _pattern(100_000, 3)
        pieces = []
        i = 0
        while i < len(data):
            size = 1 + (i * 7919) % 97
            pieces.append(data[i : i + size])
            i += size

        async def send() -> None:
            for p in pieces:
                await a.write(p)
            await a.close_write()

        got, _ = await asyncio.gather(read_all(b), send())
        assert got == data

    async def test_write_accepts_bytearray_and_memoryview(
        self, pair: tuple[Channel, Channel]
    ) -> None:
        a, b = pair
        buf = bytearray(b"mutable")
        await a.write(buf)
        buf[:] = b"XXXXXXX"  # allowed: write() has returned
        await a.write(memoryview(b"--view"))
        await a.close_write()
        assert await read_all(b) == b"mutable--view"

    async def test_half_close_both_directions(self, pair: tuple[Channel, Channel]) -> None:
        a, b = pair
        await a.write(b"request")
        await a.close_write()
        await a.close_write()  # idempotent
        with pytest.raises(StreamClosed):
            await a.write(b"late")
        assert await read_all(b) == b"request"
        assert await b.read() == b""  # EOF stays EOF
        # The other direction still works after our half-close.
        await b.write(b"response")
        assert await read_n(a, 8) == b"response"
        await b.close_write()
        assert await read_all(a) == b""

    async def test_unread(self, pair: tuple[Channel, Channel]) -> None:
        a, b = pair
        await a.write(b"header|body")
        got = await read_n(b, 11)
        b.unread(got[7:])
        assert await read_n(b, 4) == b"body"

    async def test_reset_is_seen_by_peer(self, pair: tuple[Channel, Channel]) -> None:
        a, b = pair
        await a.write(b"x")
        assert await read_n(b, 1) == b"x"
        a.reset()
        a.reset()  # idempotent, never raises
        assert a.closed
        with pytest.raises(ConnectionClosed):
            await a.read()
        with pytest.raises(ConnectionClosed):
            a.write_nowait(b"y")
        try:
            async with asyncio.timeout(STEP):
                while True:  # a reset may still let a little data through first
                    if not await b.read():
                        if self.signals_reset:
                            raise AssertionError("peer saw EOF, not a reset")
                        await b.close()
                        break
        except ConnectionClosed:
            pass
        assert b.closed
        with pytest.raises(ConnectionClosed):
            b.write_nowait(b"z")
        await b.close()  # closing a dead connection is fine

    async def test_reset_is_seen_by_push_receiver(self, pair: tuple[Channel, Channel]) -> None:
        a, b = pair
        col = Collector()
        b.start_push(col)
        a.reset()
        if not self.signals_reset:
            await col.wait_for(lambda c: c.eof or bool(c.lost), "EOF or connection_lost")
            await b.close()
        await col.wait_for(lambda c: bool(c.lost), "connection_lost")
        assert len(col.lost) == 1
        if self.signals_reset:
            assert isinstance(col.lost[0], ConnectionError)

    async def test_close_delivers_queued_data(self, pair: tuple[Channel, Channel]) -> None:
        a, b = pair
        data = _pattern(3 << 20, 4)
        reader = asyncio.ensure_future(read_all(b))
        a.write_nowait(data)  # queued, not drained
        async with asyncio.timeout(STEP):
            await a.close()
        await a.close()  # idempotent
        assert a.closed
        with pytest.raises(ConnectionClosed):
            a.write_nowait(b"late")
        got = await reader
        assert len(got) == len(data) and got == data

    async def test_drain_without_backlog_returns(self, pair: tuple[Channel, Channel]) -> None:
        a, _ = pair
        a.write_nowait(b"small")
        async with asyncio.timeout(STEP):
            await a.drain()
        await a.close()
        with pytest.raises(ConnectionClosed):
            await a.drain()

    async def test_push_after_pull_reads_rest_in_order(self, pair: tuple[Channel, Channel]) -> None:
        a, b = pair
        data = _pattern(2 << 20, 5)
        await a.write(data[:1000])
        assert await read_n(b, 100) == data[:100]
        # Let the rest of the first write arrive and sit in b's pull buffer.
        await asyncio.sleep(0.01)
        col = Collector()
        b.start_push(col)
        with pytest.raises(RuntimeError):
            await b.read()

        async def send_rest() -> None:
            view = memoryview(data)
            for i in range(1000, len(data), 64 << 10):
                await a.write(view[i : i + (64 << 10)])
            await a.close_write()

        await send_rest()
        await col.wait_for(lambda c: c.eof, "EOF in push mode")
        assert bytes(col.data) == data[100:]
        assert not col.lost

    async def test_push_delivers_eof_that_already_happened(
        self, pair: tuple[Channel, Channel]
    ) -> None:
        a, b = pair
        await a.write(b"all of it")
        await a.close_write()
        assert await read_n(b, 3) == b"all"
        await asyncio.sleep(0.01)
        col = Collector()
        b.start_push(col)
        await col.wait_for(lambda c: c.eof, "EOF")
        assert bytes(col.data) == b" of it"

    async def test_push_pause_and_resume_reading(self, pair: tuple[Channel, Channel]) -> None:
        a, b = pair
        col = Collector()
        b.start_push(col)
        b.pause_reading()
        await a.write(b"held back")
        await asyncio.sleep(0.05)
        assert bytes(col.data) == b""
        b.resume_reading()
        await col.wait_for(lambda c: len(c.data) == 9, "data after resume_reading")
        assert bytes(col.data) == b"held back"

    async def test_eof_and_loss_are_delivered_once(self, pair: tuple[Channel, Channel]) -> None:
        a, b = pair
        col = Collector()
        b.start_push(col)
        await a.close_write()
        await col.wait_for(lambda c: c.eof, "EOF")
        b.pause_reading()
        b.resume_reading()
        await b.write(b"still writable after EOF")
        assert await read_n(a, 24) == b"still writable after EOF"
        await b.close()
        await col.wait_for(lambda c: bool(c.lost), "connection_lost after close()")
        await asyncio.sleep(0.02)
        assert col.eof_count == 1
        assert col.lost == [None]

    async def test_backpressure_pull_reader(self, pair: tuple[Channel, Channel]) -> None:
        a, b = pair
        written = await _fill_until_paused(a)
        drained = asyncio.ensure_future(a.drain())
        await asyncio.sleep(0.05)
        assert not drained.done(), "drain() returned while the peer was not reading"
        got = await read_n(b, written)
        assert len(got) == written
        async with asyncio.timeout(STEP):
            await drained
        assert not a.write_paused

    async def test_backpressure_push_reader_paused(self, pair: tuple[Channel, Channel]) -> None:
        a, b = pair
        col = Collector()
        b.start_push(col)
        b.pause_reading()
        written = await _fill_until_paused(a)
        drained = asyncio.ensure_future(a.drain())
        await asyncio.sleep(0.05)
        assert not drained.done()
        b.resume_reading()
        await col.wait_for(lambda c: len(c.data) >= written, "all bytes after resume")
        async with asyncio.timeout(STEP):
            await drained


async def _fill_until_paused(chan: Channel, limit: int = 256 << 20) -> int:
    """``write_nowait`` until ``write_paused`` stays True; returns the bytes written.

    Paused once is not enough: the kernel's socket buffers (auto-tuned, several MiB)
    may still take bytes, and the loop then resumes writing by itself.  Fill until
    the writer is still paused after the loop had time to move bytes into the kernel.
    """
    chunk = bytes(64 << 10)
    written = 0
    deadline = time.monotonic() + STEP
    while True:
        while not chan.write_paused:
            if written >= limit or time.monotonic() > deadline:
                raise AssertionError(f"write_paused never turned True after {written} bytes")
            chan.write_nowait(chunk)
            written += len(chunk)
            if written % (1 << 20) == 0:
                await asyncio.sleep(0)  # let the socket move bytes into the kernel
        await asyncio.sleep(0.1)
        if chan.write_paused:
            return written
