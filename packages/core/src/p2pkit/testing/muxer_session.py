"""Muxer suite scenarios: the end of a session.

A graceful ``close()`` lets open streams finish, does not wait for streams closed both
ways, returns for every concurrent caller, still ends the session when cancelled, and
fails ``accept_stream``; a peer that vanishes fails every stream and the session.
"""

from __future__ import annotations

import asyncio
import contextlib
import os

import pytest

from p2pkit.errors import ConnectionClosed, P2PError
from p2pkit.testing.muxer_base import (
    STEP_TIMEOUT,
    MiB,
    MuxerSuiteBase,
    Sessions,
    connected_stream,
    read_all,
)

__all__ = ["PeerLossScenarios", "SessionCloseScenarios"]


class SessionCloseScenarios(MuxerSuiteBase):
    """A session closed by us (or by the peer's close): streams finish, callers return."""

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


class PeerLossScenarios(MuxerSuiteBase):
    """The peer's session goes away without a close: everything fails, nothing hangs."""

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
