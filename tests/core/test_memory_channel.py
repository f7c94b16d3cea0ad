"""The in-memory channel pair (p2pkit.testing.memory): memory-specific behaviour."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from p2pkit.abc import Channel
from p2pkit.errors import ConnectionClosed, StreamClosed
from p2pkit.testing.memory import channel_pair
from p2pkit.testing.transport_suite import ChannelSuite, dispose


class Recorder:
    def __init__(self) -> None:
        self.data = bytearray()
        self.eof = False
        self.lost: list[BaseException | None] = []

    def data_received(self, data: memoryview) -> None:
        self.data += data

    def eof_received(self) -> None:
        self.eof = True

    def connection_lost(self, exc: BaseException | None) -> None:
        self.lost.append(exc)


async def test_pull_roundtrip_and_unread() -> None:
    a, b = channel_pair()
    assert a.is_initiator and not b.is_initiator
    assert a.transport_name == "memory"
    assert a.remote_addr == b.local_addr
    await a.write(b"hello")
    assert await b.read() == b"hello"
    b.unread(b"lo")
    assert await b.read() == b"lo"
    await a.close()
    await b.close()


async def test_push_delivery_is_not_reentrant() -> None:
    a, b = channel_pair()
    a.write_nowait(b"early")
    rec = Recorder()
    b.start_push(rec)
    assert bytes(rec.data) == b"early"  # buffered bytes delivered inside start_push
    a.write_nowait(b"late")
    assert bytes(rec.data) == b"early"  # not inside the writer's call
    await asyncio.sleep(0)
    assert bytes(rec.data) == b"earlylate"
    await a.close_write()
    await asyncio.sleep(0)
    assert rec.eof
    with pytest.raises(StreamClosed):
        a.write_nowait(b"x")
    a.reset()
    await asyncio.sleep(0)
    assert len(rec.lost) == 1 and isinstance(rec.lost[0], ConnectionClosed)


async def test_flow_control_hysteresis() -> None:
    a, b = channel_pair(high_water=1000)
    a.write_nowait(b"x" * 2000)
    assert a.write_paused
    drained = asyncio.ensure_future(a.drain())
    await asyncio.sleep(0)
    assert not drained.done()
    await b.read(1700)  # 300 left > low water (250): still paused
    await asyncio.sleep(0)
    assert not drained.done()
    await b.read(100)
    await asyncio.sleep(0)
    assert drained.done() and not a.write_paused
    await a.close()
    await b.close()


async def test_paused_reading_holds_bytes_back() -> None:
    a, b = channel_pair(high_water=10)
    rec = Recorder()
    b.start_push(rec)
    b.pause_reading()
    a.write_nowait(b"0123456789abc")
    await a.close_write()
    await asyncio.sleep(0)
    assert not rec.data and not rec.eof
    assert a.write_paused
    b.resume_reading()
    await asyncio.sleep(0)
    assert bytes(rec.data) == b"0123456789abc" and rec.eof
    assert not a.write_paused
    await b.close()
    await asyncio.sleep(0)
    assert rec.lost == [None]


class TestMemoryChannelContract(ChannelSuite):
    """The shared Channel contract, run against the in-memory pair."""

    @pytest.fixture
    async def pair(self) -> AsyncIterator[tuple[Channel, Channel]]:
        a, b = channel_pair()
        yield a, b
        await dispose(a, b)
