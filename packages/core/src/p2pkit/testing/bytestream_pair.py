"""Two connected in-memory :class:`~p2pkit.abc.ByteStream` ends, for protocol tests.

Smaller than :func:`p2pkit.testing.memory.channel_pair`: no push mode, no flow
control, but writes can be split into tiny pieces (``chunk_size``) so that every
parser sees its input fragmented -- down to one byte per ``read()``.
"""

from __future__ import annotations

import asyncio

from p2pkit.abc import Buffer, ByteStream
from p2pkit.errors import StreamClosed, StreamReset
from p2pkit.io import ReadBuffer


class MemoryByteStream(ByteStream):
    """One end; what it writes appears in the peer's read buffer."""

    def __init__(self, chunk_size: int | None = None) -> None:
        self._rbuf = ReadBuffer()
        self.peer: MemoryByteStream | None = None
        self.chunk_size = chunk_size
        self.write_closed = False
        self.closed = False
        self.was_reset = False

    async def read(self, max_bytes: int = -1) -> bytes:
        if self.closed and not self.was_reset:
            raise StreamClosed("read on a closed stream")
        return await self._rbuf.read(max_bytes)

    async def write(self, data: Buffer) -> None:
        if self.was_reset:
            raise StreamReset("stream was reset")
        if self.write_closed:
            raise StreamClosed("write after close_write")
        peer = self.peer
        assert peer is not None
        raw = bytes(data)
        step = self.chunk_size or len(raw) or 1
        for i in range(0, len(raw), step):
            if i:
                # Let the reader run between pieces so it really sees them one by one.
                await asyncio.sleep(0)
            peer._rbuf.feed(raw[i : i + step])

    async def close_write(self) -> None:
        if not self.write_closed and not self.was_reset:
            self.write_closed = True
            if self.peer is not None:
                self.peer._rbuf.feed_eof()

    async def close(self) -> None:
        await self.close_write()
        self.closed = True

    def reset(self) -> None:
        if self.was_reset:
            return
        self.was_reset = True
        self.write_closed = True
        self._rbuf.fail(StreamReset("stream was reset"))
        if self.peer is not None and not self.peer.was_reset:
            self.peer.was_reset = True
            self.peer.write_closed = True
            self.peer._rbuf.fail(StreamReset("stream reset by peer"))

    def unread(self, data: bytes) -> None:
        self._rbuf.unread(data)


def bytestream_pair(chunk_size: int | None = None) -> tuple[MemoryByteStream, MemoryByteStream]:
    """Return ``(a, b)``: bytes written on one are read on the other.

    ``chunk_size``: deliver every write in pieces of at most this many bytes.
    """
    a = MemoryByteStream(chunk_size)
    b = MemoryByteStream(chunk_size)
    a.peer, b.peer = b, a
    return a, b
