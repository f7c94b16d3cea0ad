"""Compliance suite for stream muxers (:class:`~p2pkit.abc.MuxedConnection`).

A muxer plugin (ours or a third party's) runs it by subclassing :class:`MuxerSuite` in a
test module and providing one fixture, ``muxer_pair``: an async factory that returns a
connected ``(initiator, responder)`` pair of sessions built over any channel pair::

    from p2pkit.testing.memory import channel_pair
    from p2pkit.testing.muxer_suite import MuxerSuite

    class TestMyMuxerOverMemory(MuxerSuite):
        @pytest.fixture
        def muxer_pair(self):
            async def make():
                a, b = channel_pair()
                muxer = MyMuxer()
                return (muxer.new_session(a, is_initiator=True),
                        muxer.new_session(b, is_initiator=False))
            return make

Every scenario runs twice: once with the initiator opening the streams, once with the
responder opening them.  The suite aborts both sessions after each test (aborting resets
the channels, so the factory need not clean up).  Class attributes tune the sizes for
slow implementations (``large_transfer_size``, ``stress_matrix``, ``slow_reader_bytes``).
Everything is bounded in time: a hang fails the test, it never blocks CI.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import pytest_asyncio

from p2pkit.abc import MuxedConnection, MuxedStream
from p2pkit.errors import ConnectionClosed, P2PError, StreamClosed, StreamReset

__all__ = ["MuxerPairFactory", "MuxerSuite"]

MuxerPairFactory = Callable[[], Awaitable[tuple[MuxedConnection, MuxedConnection]]]
Sessions = tuple[MuxedConnection, MuxedConnection]

MiB = 1 << 20
STEP_TIMEOUT = 20.0  # one scenario; pytest-timeout is the outer bound


async def read_all(stream: MuxedStream, limit: int = 1 << 30) -> bytes:
    """Read until EOF (bounded by ``limit`` bytes)."""
    parts: list[bytes] = []
    got = 0
    while True:
        chunk = await stream.read()
        if not chunk:
            return b"".join(parts)
        parts.append(chunk)
        got += len(chunk)
        if got > limit:
            raise AssertionError(f"read more than {limit} bytes")


async def echo(stream: MuxedStream) -> None:
    """Echo until EOF, then half-close."""
    while True:
        chunk = await stream.read()
        if not chunk:
            break
        await stream.write(chunk)
    await stream.close_write()


async def connected_stream(
    opener: MuxedConnection, acceptor: MuxedConnection
) -> tuple[MuxedStream, MuxedStream]:
    """Open a stream on ``opener`` and accept it on ``acceptor`` (a first byte makes it
    visible to muxers that announce streams lazily, and is read back off)."""
    out = await opener.open_stream()
    await out.write(b"\x00")
    inc = await acceptor.accept_stream()
    assert await inc.readexactly(1) == b"\x00"
    return out, inc


class MuxerSuite:
    """Base class of a muxer's compliance tests (see the module docstring)."""

    large_transfer_size = 32 * MiB
    slow_reader_bytes = 4 * MiB
    stress_matrix: tuple[tuple[int, int], ...] = tuple(
        (s, m) for s in (1, 10, 100, 1000) for m in (1, 10, 100)
    )
    stress_message = b"0123456789abcdef"

    @pytest.fixture
    def muxer_pair(self) -> MuxerPairFactory:
        raise NotImplementedError("a MuxerSuite subclass must provide the muxer_pair fixture")

    @pytest_asyncio.fixture(params=["initiator-opens", "responder-opens"])
    async def sessions(
        self, request: pytest.FixtureRequest, muxer_pair: MuxerPairFactory
    ) -> AsyncIterator[Sessions]:
        """(opener, acceptor): the side that opens the streams first."""
        initiator, responder = await asyncio.wait_for(muxer_pair(), STEP_TIMEOUT)
        try:
            if request.param == "initiator-opens":
                yield initiator, responder
            else:
                yield responder, initiator
        finally:
            for s in (initiator, responder):
                s.abort()
            for s in (initiator, responder):
                await asyncio.wait_for(s.wait_closed(), STEP_TIMEOUT)

    # -- basics ------------------------------------------------------------------------

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

    async def test_session_close_lets_streams_finish(self, sessions: Sessions) -> None:
        opener, acceptor = sessions
        payload = os.urandom(1 * MiB)
        async with asyncio.timeout(STEP_TIMEOUT):
            out, inc = await connected_stream(opener, acceptor)
            reader = asyncio.create_task(read_all(inc))
            await out.write(payload)
            await out.close_write()
            closing = asyncio.create_task(opener.close())
            assert await reader == payload
            await inc.close()
            await closing
            assert opener.is_closed
            with pytest.raises(ConnectionClosed):
                await opener.accept_stream()
            with pytest.raises(ConnectionClosed):
                await opener.open_stream()
            # the peer's session ends too; accept_stream then raises
            with pytest.raises(ConnectionClosed):
                await acceptor.accept_stream()
            await acceptor.wait_closed()

    async def test_session_close_does_not_wait_for_streams_closed_both_ways(
        self, sessions: Sessions
    ) -> None:
        """A stream we closed both ways only waits for the peer's FIN, whose data we
        would discard: a graceful close does not wait for it.  (A host stopping with a
        stream whose peer never finishes waited its whole close timeout, then aborted.)"""
        opener, acceptor = sessions
        async with asyncio.timeout(STEP_TIMEOUT):
            out, inc = await connected_stream(opener, acceptor)
            await out.write(b"last words")
            assert await inc.readexactly(10) == b"last words"
            await out.close()  # both ways; the peer keeps its side open
            async with asyncio.timeout(0.5):  # below every close timeout the suites use
                await opener.close()
            assert opener.is_closed
            await acceptor.wait_closed()

    async def test_concurrent_closes_all_return_with_the_close(self, sessions: Sessions) -> None:
        """Several ``close()`` calls at once (the application's and the swarm's, when the
        accept loop ends, may overlap) all return when the session has closed, none
        waits its own close timeout.  (QUIC's second caller waited for
        acknowledgements through a future the first had replaced, up to 5 s; the
        race needs acknowledgements in flight, which
        ``tests/quic/test_quic_stream_limits_resets.py`` makes sure of.)"""
        opener, acceptor = sessions
        payload = os.urandom(256 * 1024)
        async with asyncio.timeout(STEP_TIMEOUT):
            out, inc = await connected_stream(opener, acceptor)
            reader = asyncio.create_task(read_all(inc))
            await out.write(payload)
            await out.close_write()
            closing = asyncio.gather(*(opener.close() for _ in range(3)))
            await asyncio.sleep(0)  # all three wait for the stream to finish
            assert await reader == payload
            await inc.close()
            async with asyncio.timeout(1.0):  # below every close timeout the suites use
                await closing
            assert opener.is_closed
            await acceptor.wait_closed()

    async def test_cancelled_close_still_ends_the_session(self, sessions: Sessions) -> None:
        """A ``close()`` cancelled while it waits for open streams (an application's
        timeout around it) ends the session at once.  It used to leave it closing for
        good: no new streams either way, and no later ``close()`` finished it."""
        opener, acceptor = sessions
        async with asyncio.timeout(STEP_TIMEOUT):
            out, inc = await connected_stream(opener, acceptor)
            await out.write(b"unfinished")
            assert await inc.readexactly(10) == b"unfinished"
            closing = asyncio.create_task(opener.close())
            await asyncio.sleep(0.05)  # waiting for the open stream
            closing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await closing
            async with asyncio.timeout(1.0):  # below every close timeout the suites use
                await opener.wait_closed()
            assert opener.is_closed
            await acceptor.wait_closed()

    async def test_accept_stream_after_close(self, sessions: Sessions) -> None:
        opener, acceptor = sessions
        async with asyncio.timeout(STEP_TIMEOUT):
            waiting = asyncio.create_task(acceptor.accept_stream())
            await asyncio.sleep(0.01)
            await acceptor.close()
            with pytest.raises(ConnectionClosed):
                await waiting
            with pytest.raises(ConnectionClosed):
                await acceptor.accept_stream()
            await opener.wait_closed()
            with pytest.raises(ConnectionClosed):
                await opener.open_stream()

    # -- load --------------------------------------------------------------------------

    async def test_stress_matrix(self, sessions: Sessions) -> None:
        opener, acceptor = sessions
        msg = self.stress_message
        for n_streams, n_msgs in self.stress_matrix:
            async with asyncio.timeout(STEP_TIMEOUT):
                await self._stress(opener, acceptor, n_streams, n_msgs, msg)

    async def _stress(
        self,
        opener: MuxedConnection,
        acceptor: MuxedConnection,
        n_streams: int,
        n_msgs: int,
        msg: bytes,
    ) -> None:
        handlers: list[asyncio.Task[None]] = []

        async def accept_loop() -> None:
            for _ in range(n_streams):
                stream = await acceptor.accept_stream()
                handlers.append(asyncio.create_task(echo(stream)))

        async def client() -> None:
            stream = await opener.open_stream()
            expected = msg * n_msgs

            async def send() -> None:
                for _ in range(n_msgs):
                    await stream.write(msg)
                await stream.close_write()

            sender = asyncio.create_task(send())
            got = await read_all(stream)
            await sender
            assert got == expected, f"{n_streams}x{n_msgs}: echo mismatch"

        acceptor_task = asyncio.create_task(accept_loop())
        await asyncio.gather(*(client() for _ in range(n_streams)))
        await acceptor_task
        await asyncio.gather(*handlers)

    async def test_both_sides_open_at_once(self, sessions: Sessions) -> None:
        """Streams opened by both ends at the same time never collide or cross."""
        a, b = sessions
        n = 50

        async def serve(session: MuxedConnection, tasks: list[asyncio.Task[None]]) -> None:
            for _ in range(n):
                tasks.append(asyncio.create_task(echo(await session.accept_stream())))

        async def client(session: MuxedConnection, tag: bytes) -> None:
            stream = await session.open_stream()
            msg = tag + str(id(stream)).encode()
            await stream.write(msg)
            await stream.close_write()
            assert await read_all(stream) == msg

        async with asyncio.timeout(STEP_TIMEOUT):
            echoes_a: list[asyncio.Task[None]] = []
            echoes_b: list[asyncio.Task[None]] = []
            servers = [
                asyncio.create_task(serve(a, echoes_a)),
                asyncio.create_task(serve(b, echoes_b)),
            ]
            await asyncio.gather(
                *(client(a, b"from-a-") for _ in range(n)),
                *(client(b, b"from-b-") for _ in range(n)),
            )
            await asyncio.gather(*servers)
            await asyncio.gather(*echoes_a, *echoes_b)

    async def test_slow_reader_does_not_stall_others(self, sessions: Sessions) -> None:
        opener, acceptor = sessions
        slow_payload = os.urandom(self.slow_reader_bytes)
        fast_payload = os.urandom(2 * MiB)
        async with asyncio.timeout(STEP_TIMEOUT):
            slow_out, slow_in = await connected_stream(opener, acceptor)
            fast_out, fast_in = await connected_stream(opener, acceptor)

            async def send(stream: MuxedStream, data: bytes) -> None:
                await stream.write(data)
                await stream.close_write()

            slow_writer = asyncio.create_task(send(slow_out, slow_payload))
            await asyncio.sleep(0.05)  # the slow stream fills its window / buffers
            fast_writer = asyncio.create_task(send(fast_out, fast_payload))
            # nobody reads slow_in: the fast stream must still complete
            assert await read_all(fast_in) == fast_payload
            await fast_writer
            # now drain the slow one: everything arrives intact
            assert await read_all(slow_in) == slow_payload
            await slow_writer

    async def test_large_transfer_checked_by_hash(self, sessions: Sessions) -> None:
        opener, acceptor = sessions
        size = self.large_transfer_size
        block = os.urandom(MiB)
        async with asyncio.timeout(max(STEP_TIMEOUT, size / (2 * MiB))):
            out, inc = await connected_stream(opener, acceptor)

            async def send() -> str:
                h = hashlib.sha256()
                for i in range(size // MiB):
                    chunk = block[i % 7 :] + block[: i % 7]
                    h.update(chunk)
                    await out.write(chunk)
                await out.close_write()
                return h.hexdigest()

            sender = asyncio.create_task(send())
            h = hashlib.sha256()
            got = 0
            while chunk := await inc.read():
                h.update(chunk)
                got += len(chunk)
            assert got == size // MiB * MiB
            assert h.hexdigest() == await sender

    # -- failures ----------------------------------------------------------------------

    async def test_peer_vanishes(self, sessions: Sessions) -> None:
        opener, acceptor = sessions
        async with asyncio.timeout(STEP_TIMEOUT):
            pairs = [await connected_stream(opener, acceptor) for _ in range(3)]
            reading = [asyncio.create_task(out.read()) for out, _ in pairs]
            accepting = asyncio.create_task(opener.accept_stream())
            await asyncio.sleep(0.01)
            acceptor.abort()  # resets the channel under the acceptor's session
            for task in reading:
                with pytest.raises((P2PError, ConnectionError)):
                    await task
            with pytest.raises(ConnectionClosed):
                await accepting
            for out, _ in pairs:
                with pytest.raises((P2PError, ConnectionError)):
                    for _ in range(100):
                        await out.write(b"x" * 1024)
                        await asyncio.sleep(0.01)
            await opener.wait_closed()
            assert opener.is_closed
            with pytest.raises(ConnectionClosed):
                await opener.open_stream()
