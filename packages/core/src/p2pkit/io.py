"""Small asyncio building blocks shared by transports, security channels and muxers."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from p2pkit.abc import MuxedStream


SMALL_CHUNK = 512
"""Fed chunks shorter than this are coalesced (:meth:`ReadBuffer.feed`)."""
SMALL_TAIL_LIMIT = 16 * 1024
"""A coalesced tail grows to about this size; the next small chunk starts another."""


class ReadBuffer:
    """The receive side of a pull-mode byte stream: chunks are fed in, ``read`` takes them out.

    Chunks are kept as the ``bytes`` objects they arrived as (no copying on feed, no
    joining on read unless a read asks for less than a chunk).  ``on_consume`` is
    called with the number of bytes each read took: muxers use it to return flow-control
    credit only when the application really consumed data.

    States: open -> EOF (after buffered data, reads return b"") or failed (buffered
    data dropped, every read raises the given exception).
    """

    __slots__ = ("_chunks", "_head", "_size", "_eof", "_exc", "_waiter", "_returned", "on_consume")

    def __init__(self, on_consume: Callable[[int], None] | None = None) -> None:
        self._chunks: deque[bytes | bytearray] = deque()  # bytearray: coalesced (feed)
        self._head = 0  # bytes of _chunks[0] already read (no re-slicing of the rest)
        self._size = 0
        self._eof = False
        self._exc: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._returned = 0  # bytes put back with unread(): consumed once already
        self.on_consume = on_consume

    # -- producer side ---------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        """Append ``data`` (ignored after EOF or failure: late frames are tolerated).

        Chunks under :data:`SMALL_CHUNK` bytes are copied onto a shared tail instead of
        kept one object each: a peer sending 1-byte frames would otherwise make us hold
        ~40 times the bytes it is charged for (a ``bytes`` object and its deque slot
        per byte), past every memory bound that counts bytes."""
        if self._eof or self._exc is not None or not data:
            return
        n = len(data)
        chunks = self._chunks
        if n < SMALL_CHUNK:
            if chunks:
                tail = chunks[-1]
                if type(tail) is bytearray and len(tail) < SMALL_TAIL_LIMIT:
                    tail += data
                    self._size += n
                    self._wake()
                    return
            chunks.append(bytearray(data))
        else:
            chunks.append(data)
        self._size += n
        self._wake()

    def feed_eof(self) -> None:
        self._eof = True
        self._wake()

    def fail(self, exc: BaseException) -> None:
        """Drop buffered data; every pending and later read raises ``exc``."""
        if self._exc is None:
            self._exc = exc
            self._chunks.clear()
            self._head = 0
            self._size = 0
        self._wake()

    def unread(self, data: bytes) -> None:
        if data:
            if self._head:
                self._chunks[0] = self._chunks[0][self._head :]
                self._head = 0
            self._chunks.appendleft(bytes(data))
            self._size += len(data)
            self._returned += len(data)
            self._wake()

    def _wake(self) -> None:
        w = self._waiter
        if w is not None:
            self._waiter = None
            if not w.done():
                w.set_result(None)

    # -- consumer side ---------------------------------------------------------------

    @property
    def size(self) -> int:
        """Bytes buffered and not yet read."""
        return self._size

    @property
    def at_eof(self) -> bool:
        return self._eof and not self._size

    @property
    def exception(self) -> BaseException | None:
        return self._exc

    def read_nowait(self, max_bytes: int = -1) -> bytes | None:
        """What ``read`` would return now, or None if it would have to wait."""
        if self._exc is not None:
            raise self._exc
        if not self._size:
            return b"" if self._eof else None
        chunks = self._chunks
        head = self._head
        if max_bytes < 0 or max_bytes >= self._size:
            if len(chunks) == 1:
                first = chunks.popleft()
                data = first[head:] if head else first
            else:
                if head:
                    chunks[0] = chunks[0][head:]
                data = b"".join(chunks)
                chunks.clear()
            self._head = 0
        else:
            first = chunks[0]
            avail = len(first) - head
            if avail <= max_bytes:
                # Whole chunks up to max_bytes, without splitting one.
                chunks.popleft()
                parts = [first[head:] if head else first]
                got = avail
                while chunks and got + len(chunks[0]) <= max_bytes:
                    nxt = chunks.popleft()
                    parts.append(nxt)
                    got += len(nxt)
                data = parts[0] if len(parts) == 1 else b"".join(parts)
                self._head = 0
            else:
                # Part of the first chunk: copy just what is returned, remember where
                # we are (slicing off the rest each time would be quadratic).
                data = first[head : head + max_bytes]
                self._head = head + max_bytes
        if type(data) is not bytes:  # (part of) a coalesced tail of small chunks
            data = bytes(data)
        self._size -= len(data)
        n = len(data)
        if self._returned:
            # Bytes handed back with unread() were already reported once: credit is
            # returned exactly once per byte received.
            k = min(self._returned, n)
            self._returned -= k
            n -= k
        if n and self.on_consume is not None:
            self.on_consume(n)
        return data

    async def read(self, max_bytes: int = -1) -> bytes:
        if max_bytes == 0:
            return b""
        while True:
            data = self.read_nowait(max_bytes)
            if data is not None:
                return data
            if self._waiter is not None:
                raise RuntimeError("concurrent read() on the same stream")
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None


class WriteGate:
    """An event that writers wait on while a lower layer is paused.

    ``paused`` mirrors asyncio's ``pause_writing``/``resume_writing``; ``close`` makes
    every waiter raise the given exception (the connection went away).
    """

    __slots__ = ("paused", "_waiters", "_exc")

    def __init__(self) -> None:
        self.paused = False
        self._waiters: list[asyncio.Future[None]] = []
        self._exc: BaseException | None = None

    def pause(self) -> None:
        self.paused = True

    def resume(self) -> None:
        self.paused = False
        waiters, self._waiters = self._waiters, []
        for w in waiters:
            if not w.done():
                w.set_result(None)

    def close(self, exc: BaseException) -> None:
        self._exc = exc
        waiters, self._waiters = self._waiters, []
        for w in waiters:
            if not w.done():
                w.set_exception(exc)

    async def wait(self) -> None:
        if self._exc is not None:
            raise self._exc
        while self.paused:
            fut = asyncio.get_running_loop().create_future()
            self._waiters.append(fut)
            await fut
            if self._exc is not None:
                raise self._exc


async def close_buffered_for_shutdown(
    stream: MuxedStream, buf: ReadBuffer, *, peer_finished: bool, reason: BaseException
) -> None:
    """``MuxedStream.close_for_shutdown`` for a stream that reads from ``buf`` (yamux,
    mplex): a peer that had finished keeps what it sent readable (only our FIN goes);
    otherwise the stream is closed and its reads, which ``close()`` ended with EOF,
    raise ``reason`` (unless they already fail with the stream's own error)."""
    if peer_finished:
        await stream.close_write()
        return
    await stream.close()
    if buf.exception is None:
        buf.fail(reason)
