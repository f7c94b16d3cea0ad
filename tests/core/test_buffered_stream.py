"""BufferedMuxedStream: every byte leaves the reservation once, credit is given once,
and a refused reservation resets the stream (the read side yamux and mplex share)."""

from __future__ import annotations

import pytest

from p2pkit.abc import Buffer
from p2pkit.buffered_stream import BufferedMuxedStream
from p2pkit.errors import ResourceLimitExceeded, StreamReset
from p2pkit.reservation import CHUNK, BufferReservation


class Scope:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.reserved = 0

    def reserve_memory(self, n: int) -> None:
        if self.reserved + n > self.limit:
            raise ResourceLimitExceeded("over the test limit")
        self.reserved += n

    def release_memory(self, n: int) -> None:
        self.reserved -= n


class Stream(BufferedMuxedStream[str]):
    """What a muxer adds: the connection feeds ``_buf`` and counts ``held``."""

    def __init__(self, memory: BufferReservation) -> None:
        super().__init__(memory, self._give_credit, "key")
        self.credited = 0
        self.refusals: list[ResourceLimitExceeded] = []

    def feed(self, data: bytes) -> None:  # the connection's per-frame path
        self._buf.feed(data)
        self._memory.held += len(data)
        if self._memory.held > self._memory.reserved:
            self._reserve()

    def _give_credit(self, key: str, n: int) -> None:  # the connection's, in a muxer
        assert key == "key"
        self.credited += n

    def _reset_by_limit(self, refusal: ResourceLimitExceeded) -> None:
        self.refusals.append(refusal)
        self._error = StreamReset("reset by limit")
        self._drop_buffered(self._error)

    async def write(self, data: Buffer) -> None:
        raise NotImplementedError

    async def close_write(self) -> None: ...
    async def close(self) -> None: ...
    def reset(self) -> None: ...


async def test_read_releases_and_credits_once_across_unread() -> None:
    scope = Scope(limit=1 << 30)
    memory = BufferReservation(scope)
    s = Stream(memory)
    s.feed(b"negotiation+payload")
    assert memory.held == 19 and scope.reserved >= 19
    head = await s.read()
    s.unread(head[12:])  # read too far: put the payload back
    assert memory.held == 7 and s.credited == 19
    assert await s.read() == b"payload"
    assert memory.held == 0 and s.credited == 19  # no second credit for the payload
    assert scope.reserved == 0  # drained: everything released


async def test_refused_reservation_resets_and_releases() -> None:
    scope = Scope(limit=8 * CHUNK)  # the first stream's bytes and headroom fit
    memory = BufferReservation(scope)
    kept, dropped = Stream(memory), Stream(memory)
    kept.feed(b"k" * CHUNK)
    dropped.feed(b"d" * (5 * CHUNK))  # beyond the scope: that stream is reset
    assert len(dropped.refusals) == 1 and not kept.refusals
    assert memory.held == CHUNK  # the dropped stream's bytes left the reservation
    with pytest.raises(StreamReset):
        await dropped.read()
    dropped.unread(b"late")  # a failed stream accounts nothing more
    assert memory.held == CHUNK
    assert await kept.read() == b"k" * CHUNK and memory.held == 0
    assert scope.reserved == 0
