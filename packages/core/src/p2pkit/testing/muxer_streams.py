"""Muxer suite scenarios: the life of one stream.

Open and accept, echo, half-close from either end, write after ``close_write``, reset
from either end (the peer sees an error, other streams carry on), a second concurrent
reader refused, ``close_for_shutdown``, a read after reset with buffered data, and
``close()`` delivering queued data.
"""

from __future__ import annotations

import asyncio
import os

import pytest

from p2pkit.abc import MuxedConnection
from p2pkit.errors import ConnectionClosed, StreamClosed, StreamReset
from p2pkit.testing.muxer_base import (
    STEP_TIMEOUT,
    MiB,
    MuxerSuiteBase,
    Sessions,
    connected_stream,
    echo,
    read_all,
)

__all__ = ["StreamScenarios"]


class StreamScenarios(MuxerSuiteBase):
    """One stream at a time: data both ways, half-close, reset, close."""

    async def test_open_accept(self, sessions: Sessions) -> None:
        opener, acceptor = sessions
        async with asyncio.timeout(STEP_TIMEOUT):
            out = await opener.open_stream()
            await out.write(b"hello")
            inc = await acceptor.accept_stream()
            assert await inc.readexactly(5) == b"hello"
            assert out.is_initiator and not inc.is_initiator
            assert hasattr(out, "protocol") and hasattr(inc, "protocol")
            assert out in opener.streams and inc in acceptor.streams
            await inc.write(b"world")
            assert await out.readexactly(5) == b"world"

    async def test_echo(self, sessions: Sessions) -> None:
        opener, acceptor = sessions
        async with asyncio.timeout(STEP_TIMEOUT):
            out, inc = await connected_stream(opener, acceptor)
            task = asyncio.create_task(echo(inc))
            for i in range(20):
                msg = f"message {i}".encode() * (i + 1)
                await out.write(msg)
                assert await out.readexactly(len(msg)) == msg
            await out.close_write()
            assert await out.read() == b""
            await task

    async def test_half_close_opener_first(self, sessions: Sessions) -> None:
        await self._half_close(*sessions, opener_first=True)

    async def test_half_close_acceptor_first(self, sessions: Sessions) -> None:
        await self._half_close(*sessions, opener_first=False)

    async def _half_close(
        self, opener: MuxedConnection, acceptor: MuxedConnection, *, opener_first: bool
    ) -> None:
        async with asyncio.timeout(STEP_TIMEOUT):
            out, inc = await connected_stream(opener, acceptor)
            first, second = (out, inc) if opener_first else (inc, out)
            await first.write(b"request")
            await first.close_write()
            assert await read_all(second) == b"request"
            # the other direction still works after the half-close
            await second.write(b"response")
            await second.close_write()
            assert await read_all(first) == b"response"
            with pytest.raises(StreamClosed):
                await first.write(b"late")
            with pytest.raises(StreamClosed):
                await second.write(b"late")

    async def test_write_after_close_write(self, sessions: Sessions) -> None:
        opener, acceptor = sessions
        async with asyncio.timeout(STEP_TIMEOUT):
            out, inc = await connected_stream(opener, acceptor)
            await out.close_write()
            await out.close_write()  # idempotent
            with pytest.raises(StreamClosed):
                await out.write(b"x")
            assert await inc.read() == b""

    async def test_reset_by_opener(self, sessions: Sessions) -> None:
        await self._reset(*sessions, by_opener=True)

    async def test_reset_by_acceptor(self, sessions: Sessions) -> None:
        await self._reset(*sessions, by_opener=False)

    async def _reset(
        self, opener: MuxedConnection, acceptor: MuxedConnection, *, by_opener: bool
    ) -> None:
        async with asyncio.timeout(STEP_TIMEOUT):
            out, inc = await connected_stream(opener, acceptor)
            resetter, other = (out, inc) if by_opener else (inc, out)
            await resetter.write(b"dropped")
            resetter.reset()
            resetter.reset()  # idempotent
            with pytest.raises(StreamReset):
                await resetter.read()
            with pytest.raises(StreamReset):
                await resetter.write(b"x")
            # the peer sees an error, not EOF (possibly after data that was in flight)
            with pytest.raises(StreamReset):
                for _ in range(100):
                    if not await other.read():
                        raise AssertionError("reset seen as EOF")
            with pytest.raises(StreamReset):
                for _ in range(100):
                    await other.write(b"x" * 1024)
                    await asyncio.sleep(0.01)
            # other streams are unaffected
            out2, inc2 = await connected_stream(opener, acceptor)
            await out2.write(b"still fine")
            assert await inc2.readexactly(10) == b"still fine"

    async def test_second_concurrent_reader_is_refused(self, sessions: Sessions) -> None:
        """A second reader waiting at the same time is refused at once (RuntimeError, as
        asyncio's StreamReader does) and the first still gets the data.  (A QUIC stream
        replaced the first reader's wakeup, so whichever reader lost it hung.)"""
        opener, acceptor = sessions
        async with asyncio.timeout(STEP_TIMEOUT):
            out, inc = await connected_stream(opener, acceptor)
            first = asyncio.create_task(inc.read(100))
            await asyncio.sleep(0.01)
            with pytest.raises(RuntimeError):
                await inc.read(100)
            await out.write(b"data")
            assert await first == b"data"

    async def test_close_for_shutdown_fails_reads_unless_the_peer_finished(
        self, sessions: Sessions
    ) -> None:
        """A stopping host closes our side of each stream (``close_for_shutdown``): a read
        of a stream whose peer had not finished raises the reason, never a silent EOF an
        application could take for the end of a complete reply; a stream whose peer had
        finished keeps what it sent readable; either way the peer sees our FIN."""
        opener, acceptor = sessions
        reason = ConnectionClosed("host is stopping")
        async with asyncio.timeout(STEP_TIMEOUT):
            out, inc = await connected_stream(opener, acceptor)
            await inc.write(b"partial")
            await asyncio.sleep(0.05)  # in out's buffer, and more may follow
            pending = asyncio.create_task(read_all(out))
            await asyncio.sleep(0.01)
            await out.close_for_shutdown(reason)
            with pytest.raises(ConnectionClosed):
                await pending
            with pytest.raises(ConnectionClosed):
                await out.read()
            assert await inc.read() == b""
            finished_out, finished_inc = await connected_stream(opener, acceptor)
            await finished_inc.write(b"the whole reply")
            await finished_inc.close_write()
            await asyncio.sleep(0.05)
            await finished_out.close_for_shutdown(reason)
            assert await read_all(finished_out) == b"the whole reply"
            assert await finished_inc.read() == b""

    async def test_read_after_reset_with_buffered_data(self, sessions: Sessions) -> None:
        opener, acceptor = sessions
        async with asyncio.timeout(STEP_TIMEOUT):
            out, inc = await connected_stream(opener, acceptor)
            await inc.write(b"unread data")
            await asyncio.sleep(0.05)  # let it arrive in out's buffer
            out.reset()
            with pytest.raises(StreamReset):
                await out.read()

    async def test_close_delivers_queued_data(self, sessions: Sessions) -> None:
        opener, acceptor = sessions
        payload = os.urandom(2 * MiB)
        async with asyncio.timeout(STEP_TIMEOUT):
            out, inc = await connected_stream(opener, acceptor)
            reader = asyncio.create_task(read_all(inc))
            await out.write(payload)
            await out.close()
            assert await reader == payload
            await inc.close()
