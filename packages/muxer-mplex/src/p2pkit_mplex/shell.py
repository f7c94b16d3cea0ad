"""asyncio shell of mplex: drives :class:`~p2pkit_mplex.session.MplexSession` over a channel.

The channel runs in push mode: :meth:`MplexConnection.data_received` parses each
received buffer in place and copies every payload once, into the stream's
:class:`~p2pkit.io.ReadBuffer`.  No task per stream and no reader task: writers call
``write_nowait`` on the channel and wait on ``drain()`` only while the channel is
paused, so a slow peer blocks only the writers, never the reading side.  Small frames
written during one loop iteration are coalesced into one channel write.

mplex has no flow control: when a stream's reader falls ``max_stream_buffer`` bytes
behind, the connection stops reading (TCP backpressure slows the sender) until the
reader catches up; after ``slow_reader_timeout`` seconds the stream is reset instead,
as go-mplex does (see the README).

Memory: bytes received and not yet read are reserved in the connection's memory scope
(``new_session(memory=...)``, the resource manager) through
:class:`~p2pkit.reservation.BufferReservation`: one integer comparison per frame; a
reservation call when buffering starts or swings by 256 KiB, a release once drained.  A
refusal resets the stream the data came on (:class:`~p2pkit.errors.StreamResetByLimit`
here, a reset to the peer); the session goes on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from p2pkit.abc import (
    Buffer,
    MemoryScope,
    MuxedConnection,
    MuxedStream,
    SecureConnection,
    StreamMuxer,
)
from p2pkit.errors import (
    ConnectionClosed,
    P2PError,
    ResourceLimitExceeded,
    StreamClosed,
    StreamReset,
    StreamResetByLimit,
)
from p2pkit.io import ReadBuffer, close_buffered_for_shutdown
from p2pkit.reservation import BufferReservation
from p2pkit_mplex._ids import PROTOCOL_ID
from p2pkit_mplex.frames import StreamKey
from p2pkit_mplex.options import MplexOptions
from p2pkit_mplex.session import (
    JOIN_LIMIT,
    DataReceived,
    Event,
    MplexControlFlood,
    MplexSession,
    StreamEnded,
    StreamOpened,
)
from p2pkit_mplex.session import StreamReset as StreamResetEvent

__all__ = ["MplexConnection", "MplexMuxer", "MplexStream"]

_COALESCE_LIMIT = 64 * 1024
"""Small frames queued during one event-loop iteration go to the channel in one write,
or as soon as this many bytes are queued (so a writer that never yields still sees
the channel's backpressure)."""


class MplexStream(MuxedStream):
    """One mplex stream.  Reads come from a bounded :class:`ReadBuffer`."""

    def __init__(self, conn: MplexConnection, key: StreamKey, name: str) -> None:
        self._conn = conn
        self.key = key
        self.stream_id = key.id
        self.is_initiator = key.opened_by_us
        self.name = name
        self.protocol: str | None = None
        self._session = conn._session
        self._buf = ReadBuffer(on_consume=self._on_consume)
        self._write_closed = False
        self._read_closed = False
        self._exc: BaseException | None = None  # reset or connection failure
        self._returned = 0  # bytes put back with unread() and not read again (accounted)
        self._remote_closed = False  # the peer's Close arrived (our reads end with EOF)

    def __repr__(self) -> str:
        side = "out" if self.is_initiator else "in"
        return f"<MplexStream {self.stream_id}/{side} protocol={self.protocol!r}>"

    def _on_consume(self, n: int) -> None:
        memory = self._conn._memory
        held = memory.held - n
        memory.held = held
        if held < memory.release_below:
            memory.shrink()
        self._session.consumed(self.key, n)
        if self._conn._paused:
            self._conn._maybe_resume()

    # -- ByteStream --------------------------------------------------------------------

    async def read(self, max_bytes: int = -1) -> bytes:
        data = await self._buf.read(max_bytes)
        if self._returned:  # only after unread(): read first, not reported to _on_consume
            n = min(self._returned, len(data))
            self._returned -= n
            self._on_held_less(n)
        return data

    def unread(self, data: bytes) -> None:
        """Bytes put back (negotiation read ahead) are held again: accounted again."""
        self._buf.unread(data)
        if data and self._exc is None:
            self._returned += len(data)
            memory = self._conn._memory
            memory.held += len(data)
            if memory.held > memory.reserved:
                try:
                    memory.grow()
                except ResourceLimitExceeded as exc:  # counted, logged by rcmgr
                    self._reset_by_limit(exc)

    def _on_held_less(self, n: int) -> None:
        memory = self._conn._memory
        memory.held -= n
        if memory.held < memory.release_below:
            memory.shrink()

    def _check_writable(self) -> None:
        if self._exc is not None:
            raise self._exc
        if self._write_closed:
            raise StreamClosed("write after close_write() on mplex stream")

    async def write(self, data: Buffer) -> None:
        self._check_writable()
        n = len(data)
        if n == 0:
            return
        channel = self._conn._channel
        session = self._session
        try:
            if n <= JOIN_LIMIT:  # else send_data_parts gives (header, payload) pairs
                self._conn._send(session.send_data(self.key, data))
            else:
                # Slices of immutable bytes may be handed over as they are.
                owned = isinstance(data, bytes) or (
                    isinstance(data, memoryview) and isinstance(data.obj, bytes)
                )
                parts = session.send_data_parts(self.key, data)
                for i in range(0, len(parts), 2):
                    self._conn._flush()  # queued small frames go first: keep the order
                    body = parts[i + 1]
                    channel.write_many((parts[i], body if owned else bytes(body)))
                    if channel.write_paused and i + 2 < len(parts):
                        await channel.drain()
                        self._check_writable()  # reset while we waited: stop here
            if channel.write_paused:
                await channel.drain()
        except ConnectionClosed as exc:
            self._conn._fail_from_writer(exc)
            raise self._exc or exc from None

    async def close_write(self) -> None:
        if self._write_closed or self._exc is not None:
            return
        self._write_closed = True
        self._conn._send_control(self._session.close_stream(self.key))
        self._conn._forget_if_done(self)

    async def close(self) -> None:
        """Half-close and stop reading: buffered and later data is discarded, reads
        return EOF (as yamux streams do)."""
        await self.close_write()
        if not self._read_closed:
            self._read_closed = True
            self._on_held_less(self._buf.size)  # discarded below, unreported
            self._returned = 0
            self._buf.on_consume = None
            self._session.consumed(self.key, self._buf.size)
            if self._exc is None:
                while self._buf.size:
                    self._buf.read_nowait()
                self._buf.feed_eof()
            self._conn._forget(self)

    async def close_for_shutdown(self, reason: BaseException) -> None:
        await close_buffered_for_shutdown(
            self, self._buf, peer_finished=self._remote_closed, reason=reason
        )

    def reset(self) -> None:
        if isinstance(self._exc, StreamReset):
            return
        if self._exc is None:  # after a session end there is nobody to tell
            self._conn._send_control(self._session.reset_stream(self.key))
        self._exc = None
        self._on_reset(StreamReset(f"mplex stream {self.stream_id} was reset locally"))

    # -- called by the connection --------------------------------------------------------

    def _reset_by_limit(self, refusal: ResourceLimitExceeded) -> None:
        """No memory for what the peer sent on this stream: reset it (both ways)."""
        error = StreamResetByLimit(f"mplex stream {self.stream_id} reset: {refusal}")
        # Without its traceback: that holds the frames of data_received (the whole read
        # and its events), kept alive as long as this stream's error.
        error.__cause__ = refusal.with_traceback(None)
        self._conn._send_control(self._session.reset_stream(self.key))
        self._on_reset(error)

    def _on_reset(self, exc: BaseException) -> None:
        if self._exc is None:
            self._exc = exc
            self._conn._memory.held -= self._buf.size  # dropped unread
            self._returned = 0
            self._buf.fail(exc)
        self._conn._forget(self)

    def _on_session_end(self, exc: BaseException | None) -> None:
        """The session ended: ``exc`` None means a bare EOF below us.  A stream the peer
        had closed returns its buffered data, then EOF.  Any other stream never got its
        end, so its reads fail: a stream cut short must not look complete."""
        if self._exc is not None:
            return
        if exc is None and not (self._remote_closed or self._read_closed):
            exc = ConnectionClosed("mplex connection ended before the peer closed the stream")
        if exc is None:
            self._buf.feed_eof()
            self._exc = ConnectionClosed("mplex session ended")
        else:
            self._exc = exc
            self._conn._memory.held -= self._buf.size
            self._returned = 0
            self._buf.fail(exc)


class MplexConnection(MuxedConnection):
    """An mplex session over one secure channel (it is the channel's push receiver)."""

    def __init__(
        self,
        channel: SecureConnection,
        *,
        is_initiator: bool,
        options: MplexOptions,
        memory: MemoryScope | None = None,
    ) -> None:
        # Received, unread bytes of every stream, reserved in ``memory`` (see module doc).
        self._memory = BufferReservation(memory)
        self._channel = channel
        self.is_initiator = is_initiator
        self.options = options
        self._session = MplexSession(is_initiator=is_initiator, options=options)
        self._streams: dict[StreamKey, MplexStream] = {}
        self._backlog: dict[StreamKey, MplexStream] = {}  # inbound, not yet accepted
        self._accept_waiters: list[asyncio.Future[None]] = []
        self._ended = False
        self._end_exc: BaseException | None = None
        self._abort_exc: BaseException | None = None
        self._closed_event = asyncio.Event()
        self._close_task: asyncio.Task[None] | None = None
        self._out: list[bytes] = []  # small frames not yet written (see _send)
        self._out_size = 0
        self._flush_handle: asyncio.Handle | None = None
        self._paused = False  # reading paused for a slow reader
        self._slow_timer: asyncio.TimerHandle | None = None
        self._blocked_control = 0  # replies queued while write_paused (see _blocked)
        self._replies_seen = 0
        # Streams opened before the peer sent anything (see open_stream).
        self._heard = False
        self._early_opened = 0
        self._early_waiters: list[asyncio.Future[None]] = []
        channel.start_push(self)

    def __repr__(self) -> str:
        return f"<MplexConnection streams={len(self._streams)} ended={self._ended}>"

    # -- MuxedConnection ---------------------------------------------------------------

    @property
    def is_closed(self) -> bool:
        return self._ended

    @property
    def ended_by(self) -> BaseException | None:
        """Why the session ended: the error it was aborted with (a typed error such as
        :class:`MplexControlFlood`), else the reset it ended with; None while it is open
        or after a clean end."""
        return self._abort_exc or self._end_exc

    @property
    def streams(self) -> Sequence[MuxedStream]:
        return list(self._streams.values())

    async def open_stream(self) -> MuxedStream:
        # js-libp2p resets every stream of a connection once more than 10 arrive before
        # its upgrader listens (maxEarlyStreams, for mplex as for yamux).  mplex has no
        # ACK, so the first frame the peer sends (it listens by then) lifts the bound.
        while not self._heard and self._early_opened >= self.options.early_outbound_streams:
            if self._ended:
                break
            fut = asyncio.get_running_loop().create_future()
            self._early_waiters.append(fut)
            try:
                await fut
            finally:
                if fut in self._early_waiters:
                    self._early_waiters.remove(fut)
        if self._ended:
            raise ConnectionClosed("mplex session is closed") from self._end_exc
        if not self._heard:
            self._early_opened += 1
        key, frame = self._session.open_stream()
        stream = MplexStream(self, key, str(key.id))
        self._streams[key] = stream
        try:
            self._send(frame)
            if self._channel.write_paused:
                await self._channel.drain()
        except ConnectionClosed as exc:
            self._fail_from_writer(exc)
            raise
        return stream

    async def accept_stream(self) -> MuxedStream:
        while True:
            if self._backlog:
                key = next(iter(self._backlog))
                return self._backlog.pop(key)
            if self._ended:
                raise ConnectionClosed("mplex session is closed") from self._end_exc
            fut = asyncio.get_running_loop().create_future()
            self._accept_waiters.append(fut)
            try:
                await fut
            finally:
                if fut in self._accept_waiters:
                    self._accept_waiters.remove(fut)

    async def close(self) -> None:
        """Half-close every stream, then close the channel (mplex has no GoAway)."""
        if not self._ended:
            frames = self._session.close()
            for stream in self._streams.values():
                stream._write_closed = True
            try:
                self._out.append(frames)
                self._flush()
            except (P2PError, OSError):
                pass
            self._end(None)
        await self._close_channel()
        await self._closed_event.wait()

    def abort(self, exc: BaseException | None = None) -> None:
        reason = f"mplex session aborted: {exc!r}" if exc is not None else "mplex session aborted"
        if not self._ended:
            self._abort_exc = exc
        self._out.clear()
        self._out_size = 0
        self._end(StreamReset(reason))
        self._channel.reset()

    async def wait_closed(self) -> None:
        await self._closed_event.wait()

    # -- Receiver (push mode) ----------------------------------------------------------

    def data_received(self, data: memoryview) -> None:
        if self._ended:
            return
        if not self._heard:
            self._heard = True
            self._wake_early()
        session = self._session
        try:
            events = session.receive_data(data)
        except P2PError as exc:
            self.abort(exc)
            return
        self._handle(events)
        out = session.data_to_send()
        if out:
            if self._channel.write_paused:
                if self._blocked():
                    return
            else:
                self._blocked_control = 0
                self._replies_seen = session.replies_queued
            self._send_control(out)
        if session.congested and not self._paused and not self._ended:
            self._pause()

    def _blocked(self) -> bool:
        """Count replies queued while the peer does not read ours; beyond
        ``max_blocked_control_frames`` abort with :class:`MplexControlFlood` (True)."""
        replies = self._session.replies_queued
        self._blocked_control += replies - self._replies_seen
        self._replies_seen = replies
        if self._blocked_control <= self.options.max_blocked_control_frames:
            return False
        self.abort(
            MplexControlFlood(
                f"mplex: {self._blocked_control} replies queued while the peer did not read"
            )
        )
        return True

    def _handle(self, events: list[Event]) -> None:
        session = self._session
        streams = self._streams
        memory = self._memory
        for ev in events:
            if type(ev) is DataReceived:
                stream = streams.get(ev.key)
                if stream is None or stream._read_closed:
                    session.consumed(ev.key, len(ev.data))
                else:
                    data = ev.data
                    stream._buf.feed(data)
                    memory.held += len(data)
                    if memory.held > memory.reserved:
                        try:
                            memory.grow()
                        except ResourceLimitExceeded as exc:  # counted, logged by rcmgr
                            stream._reset_by_limit(exc)
            elif type(ev) is StreamOpened:
                stream = MplexStream(self, ev.key, ev.name)
                streams[ev.key] = stream
                self._backlog[ev.key] = stream
                self._wake_acceptors()
            elif type(ev) is StreamEnded:
                stream = streams.get(ev.key)
                if stream is not None:
                    stream._remote_closed = True
                    stream._buf.feed_eof()
                    self._forget_if_done(stream)
            elif type(ev) is StreamResetEvent:
                stream = streams.get(ev.key)
                if stream is not None:
                    stream._on_reset(StreamReset(f"mplex stream {ev.key.id}: {ev.reason}"))

    # -- slow readers ------------------------------------------------------------------

    def _pause(self) -> None:
        """A stream is over max_stream_buffer: stop reading the connection for a while."""
        self._paused = True
        self._channel.pause_reading()
        self._slow_timer = asyncio.get_running_loop().call_later(
            self.options.slow_reader_timeout, self._slow_reader_expired
        )

    def _maybe_resume(self) -> None:
        if self._paused and (self._ended or not self._session.congested):
            self._paused = False
            if self._slow_timer is not None:
                self._slow_timer.cancel()
                self._slow_timer = None
            if not self._ended:
                self._channel.resume_reading()

    def _slow_reader_expired(self) -> None:
        """The slow readers did not catch up in time: reset their streams, read on."""
        self._slow_timer = None
        if self._ended:
            return
        self._handle(self._session.reset_congested())
        out = self._session.data_to_send()
        if out:
            self._send_control(out)
        self._maybe_resume()

    def eof_received(self) -> None:
        """Bare EOF ends the session: streams return their buffered data, then EOF."""
        if not self._ended:
            self._end(None)
            self._close_task = asyncio.get_running_loop().create_task(self._close_channel())

    def connection_lost(self, exc: BaseException | None) -> None:
        if exc is None:
            self._end(None)
        else:
            err = exc if isinstance(exc, P2PError) else ConnectionClosed(f"connection lost: {exc}")
            self._end(StreamReset(f"mplex connection lost: {err}"))

    # -- internals ---------------------------------------------------------------------

    def _send(self, frame: bytes) -> None:
        """Queue a small frame; what is queued in one loop iteration goes out in one
        channel write (fewer syscalls and packets for many small messages).  Raises
        ConnectionClosed (from an immediate flush) like ``write_nowait``."""
        self._out.append(frame)
        self._out_size += len(frame)
        if self._out_size >= _COALESCE_LIMIT:
            self._flush()
        elif self._flush_handle is None:
            self._flush_handle = asyncio.get_running_loop().call_soon(self._flush_soon)

    def _flush(self) -> None:
        """Write the queued frames now (before any frame written directly)."""
        out = self._out
        if not out:
            return
        data = out[0] if len(out) == 1 else b"".join(out)
        out.clear()
        self._out_size = 0
        self._channel.write_nowait(data)

    def _flush_soon(self) -> None:
        self._flush_handle = None
        if self._channel.closed:
            self._out.clear()
            self._out_size = 0
            return
        try:
            self._flush()
        except (P2PError, OSError) as exc:
            self._fail_from_writer(exc)

    def _send_control(self, frame: bytes) -> None:
        """Send a small frame without waiting (close, reset): never blocks, never raises."""
        if frame and not self._channel.closed:
            try:
                self._send(frame)
            except (P2PError, OSError) as exc:
                self._fail_from_writer(exc)

    def _fail_from_writer(self, exc: BaseException) -> None:
        if not self._ended:
            self._end(StreamReset(f"mplex connection closed: {exc}"))

    def _forget(self, stream: MplexStream) -> None:
        if self._streams.get(stream.key) is stream:
            del self._streams[stream.key]
        if self._backlog.get(stream.key) is stream:
            del self._backlog[stream.key]
        if self._paused:
            self._maybe_resume()

    def _forget_if_done(self, stream: MplexStream) -> None:
        if not self._session.has_stream(stream.key):
            self._forget(stream)

    def _wake_acceptors(self) -> None:
        waiters, self._accept_waiters = self._accept_waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)

    def _end(self, exc: BaseException | None) -> None:
        """The session is over: ``exc`` None = clean (streams see EOF), else reset."""
        if self._ended:
            return
        self._ended = True
        self._end_exc = exc
        self._maybe_resume()  # cancels the slow-reader timer
        self._session.close()
        for stream in list(self._streams.values()):
            stream._on_session_end(exc)
        self._streams.clear()
        if exc is not None:
            for stream in self._backlog.values():
                stream._on_session_end(exc)
            self._backlog.clear()
        self._memory.close()  # what streams still buffer after a clean end is not counted
        self._wake_acceptors()
        self._wake_early()
        self._closed_event.set()

    def _wake_early(self) -> None:
        waiters, self._early_waiters = self._early_waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)

    async def _close_channel(self) -> None:
        try:
            await self._channel.close()
        except (P2PError, OSError):
            self._channel.reset()


class MplexMuxer(StreamMuxer):
    """The ``/mplex/6.7.0`` stream muxer (factory of :class:`MplexConnection`)."""

    protocol_id = PROTOCOL_ID
    accepts_memory_scope = True

    def __init__(self, options: MplexOptions | None = None) -> None:
        self.options = options or MplexOptions()

    def new_session(
        self, conn: SecureConnection, *, is_initiator: bool, memory: MemoryScope | None = None
    ) -> MplexConnection:
        return MplexConnection(conn, is_initiator=is_initiator, options=self.options, memory=memory)
