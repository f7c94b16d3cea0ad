"""One bidirectional QUIC stream as a :class:`~p2pkit.abc.MuxedStream`.

The yamux/mplex contract, on QUIC's own stream machinery:

* ``close_write`` sends FIN; a later ``write`` raises StreamClosed; the peer reads EOF
  after all data.
* ``reset`` sends RESET_STREAM (our direction) and STOP_SENDING (theirs); from then on
  both ends' reads and writes raise StreamReset (the peer's write learns it from the
  STOP_SENDING, its read from the RESET_STREAM).
* ``close`` = ``close_write`` and stop reading: later data from the peer is discarded
  (and its credit returned, so it cannot stall the connection), as on the other muxers.
* Memory: bytes buffered unread are reserved in the connection's memory scope (the
  resource manager, :class:`~p2pkit.reservation.BufferReservation`); a refusal resets
  the stream (:class:`~p2pkit.errors.StreamResetByLimit`), as on yamux.
* Backpressure: ``write`` hands aioquic only what :meth:`~p2pkit_quic.flow.StreamFlow.room`
  allows (``send_buffer`` unacknowledged on the stream, ``CREDIT_AHEAD`` beyond the
  peer's credit for it, ``connection_send_buffer`` unsent on the connection) and
  waits for the rest; QUIC flow and congestion control decide when bytes leave.  The
  receive side is bounded by the stream window, whose
  credit comes back only as the application reads (:mod:`p2pkit_quic.machine`).

The session (:mod:`p2pkit_quic.session`) feeds events in; nothing here does I/O.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TYPE_CHECKING

from p2pkit.abc import Buffer, MuxedStream
from p2pkit.errors import StreamClosed, StreamReset
from p2pkit.io import SMALL_CHUNK, SMALL_TAIL_LIMIT

if TYPE_CHECKING:
    from p2pkit_quic.session import QuicSession

RESET_CODE = 0
"""Application error code of our RESET_STREAM / STOP_SENDING (libp2p defines none)."""
CHUNK = 1 << 20
"""Largest piece handed to aioquic per call, so a huge write shows backpressure early."""


class QuicStream(MuxedStream):
    """See the module docstring.  Built by the session, never by applications."""

    __slots__ = (
        "_buffered",
        "_chunks",
        "_consumed",
        "_eof",
        "_error",
        "_read_closed",
        "_readable",
        "_recredit",
        "_session",
        "_writable",
        "_write_closed",
        "_write_error",
        "is_initiator",
        "protocol",
        "stream_id",
    )

    def __init__(self, session: QuicSession, stream_id: int, *, is_initiator: bool) -> None:
        self._session = session
        self.stream_id = stream_id
        self.is_initiator = is_initiator
        self.protocol: str | None = None
        # What arrived and was not read yet (bytearray: coalesced, on_data).  None while
        # empty: an empty deque takes 760 bytes, and a stream may wait long for data.
        self._chunks: deque[bytes | bytearray] | None = None
        self._buffered = 0
        self._consumed = 0  # bytes read by the application (or discarded): the credit base
        self._recredit = 0  # bytes put back by unread(): their credit was already given
        self._eof = False  # the peer's FIN arrived (after the buffered data)
        self._read_closed = False
        self._write_closed = False
        self._write_error: BaseException | None = None  # the connection ended after EOF
        self._error: BaseException | None = None
        self._readable: asyncio.Future[None] | None = None
        self._writable: asyncio.Future[None] | None = None

    # -- state -----------------------------------------------------------------------------

    @property
    def done(self) -> bool:
        """Nothing more will happen: reset, or FIN sent and the peer's FIN received."""
        return self._error is not None or (self._write_closed and self._eof)

    def __repr__(self) -> str:
        return f"<QuicStream {self.stream_id} {'out' if self.is_initiator else 'in'}>"

    # -- reading -----------------------------------------------------------------------------

    async def read(self, max_bytes: int = -1) -> bytes:
        while not self._chunks:
            if self._error is not None:
                raise self._error
            if self._eof or self._read_closed:
                return b""
            if self._readable is not None:  # as the muxers' streams (p2pkit.io)
                raise RuntimeError("concurrent read() on the same stream")
            self._readable = asyncio.get_running_loop().create_future()
            try:
                await self._readable
            finally:
                self._readable = None
        if self._error is not None:
            raise self._error
        chunks = self._chunks
        assert chunks  # (the loop above)
        chunk = chunks.popleft()
        if 0 <= max_bytes < len(chunk):
            chunks.appendleft(chunk[max_bytes:])
            chunk = chunk[:max_bytes]
        elif not chunks:
            self._chunks = None
        n = len(chunk)
        self._buffered -= n
        self._session.release(n)
        again = min(n, self._recredit)
        self._recredit -= again
        if n > again:
            self._consumed += n - again
            self._session.consumed(self, n - again, self._consumed)
        return chunk if type(chunk) is bytes else bytes(chunk)

    def unread(self, data: bytes) -> None:
        if data:
            if self._chunks is None:
                self._chunks = deque()
            self._chunks.appendleft(bytes(data))
            self._buffered += len(data)
            self._recredit += len(data)
            self._session.memory.held += len(data)  # accounted again until read

    def on_data(self, data: bytes, end_stream: bool) -> None:
        """Called by the session for each STREAM frame delivered in order."""
        if self._error is not None or self._read_closed:
            if data:
                self._consumed += len(data)
                self._session.consumed(self, len(data), self._consumed)
        elif data:
            if not self._session.hold(self, len(data)):
                # No memory for it: the stream was reset; the bytes' credit goes back.
                self._consumed += len(data)
                self._session.consumed(self, len(data), self._consumed)
                return
            chunks = self._chunks
            if chunks is None:
                chunks = self._chunks = deque()
            if len(data) < SMALL_CHUNK:  # tiny STREAM frames: one tail, not an object each
                tail = chunks[-1] if chunks else None
                if type(tail) is bytearray and len(tail) < SMALL_TAIL_LIMIT:
                    tail += data
                else:
                    chunks.append(bytearray(data))
            else:
                chunks.append(data)
            self._buffered += len(data)
        if end_stream:
            self._eof = True
        self._wake_reader()
        if end_stream:
            self._session.stream_maybe_done(self)

    def _wake_reader(self) -> None:
        if self._readable is not None and not self._readable.done():
            self._readable.set_result(None)

    # -- writing -----------------------------------------------------------------------------

    async def write(self, data: Buffer) -> None:
        view = memoryview(data).cast("B")
        pos = 0
        session = self._session
        while True:
            if self._error is not None:
                raise self._error
            if self._write_error is not None:
                raise self._write_error
            if self._write_closed:
                raise StreamClosed("stream closed for writing")
            if pos >= len(view):
                return
            room = session.room(self, min(CHUNK, len(view) - pos))
            if room <= 0:
                if self._writable is not None:  # a second writer would be lost
                    raise RuntimeError("concurrent write() on the same stream")
                self._writable = asyncio.get_running_loop().create_future()
                session.wait_writable(self)
                try:
                    await self._writable
                finally:
                    self._writable = None
                continue
            piece = bytes(view[pos : pos + room])
            pos += len(piece)
            session.send(self, piece, end_stream=False)

    def wake_writer(self) -> None:
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)

    async def close_write(self) -> None:
        if self._write_closed or self._error is not None:
            return
        self._write_closed = True
        self._session.send(self, b"", end_stream=True)
        self._session.stream_maybe_done(self)

    @property
    def closed_both_ways(self) -> bool:
        """Closed by us for writing and for reading (:meth:`close`), whatever the peer did."""
        return self._write_closed and self._read_closed

    async def close(self) -> None:
        await self.close_write()
        if not self._read_closed:
            self._read_closed = True
            self._drop_unread()
            self._wake_reader()
            self._session.stream_maybe_done(self)

    async def close_for_shutdown(self, reason: BaseException) -> None:
        await self.close_write()
        if not self._eof:  # else the peer has finished: what it sent stays readable
            self.fail(reason)

    def _drop_unread(self) -> None:
        """Discard what was received and not read (closed for reading, or failed): its
        memory is released and its credit given back, since credit otherwise returns
        only as the application reads, and unread bytes would stall the connection."""
        dropped = self._buffered - self._recredit
        self._session.release(self._buffered)
        self._chunks = None
        self._buffered = self._recredit = 0
        if dropped > 0:
            self._consumed += dropped
            self._session.consumed(self, dropped, self._consumed)

    def reset(self) -> None:
        if self.done:
            return
        self._session.reset_stream(self)
        self.fail(StreamReset("stream reset"))

    def connection_ended(self, error: BaseException) -> None:
        """The connection is gone.  A stream whose peer had finished sending keeps what
        it received readable (then EOF); any other fails with ``error``, never a silent
        EOF."""
        if self._error is None and self._eof and not self._read_closed:
            self._write_error = error
            self._write_closed = True
            self.wake_writer()
            self._session.stream_maybe_done(self)
            return
        self.fail(error)

    def fail(self, error: BaseException) -> None:
        """End the stream with ``error`` (reset by either side, or the connection died)."""
        if self._error is not None:
            return
        self._error = error
        self._drop_unread()
        self._wake_reader()
        self.wake_writer()
        self._session.stream_maybe_done(self)
