"""What every muxer scenario builds on: stream helpers, the sizes, the fixtures.

:func:`read_all`, :func:`echo` and :func:`connected_stream` drive streams;
:class:`MuxerSuiteBase` holds the tuning attributes (``large_transfer_size``,
``stress_matrix``, ``slow_reader_bytes``), the ``muxer_pair`` fixture to override and the
``sessions`` fixture that runs every scenario with either side opening the streams.  The
scenarios are in ``muxer_streams``, ``muxer_session`` and ``muxer_load``;
:class:`~p2pkit.testing.muxer_suite.MuxerSuite` combines them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import pytest_asyncio

from p2pkit.abc import MuxedConnection, MuxedStream

__all__ = [
    "STEP_TIMEOUT",
    "MiB",
    "MuxerPairFactory",
    "MuxerSuiteBase",
    "Sessions",
    "connected_stream",
    "echo",
    "read_all",
]

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


class MuxerSuiteBase:
    """Tuning attributes and fixtures of :class:`~p2pkit.testing.muxer_suite.MuxerSuite`
    (its scenarios are in the mixins that subclass this)."""

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
