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
as go-mplex does (see the README and :mod:`p2pkit_mplex.slow_readers`).

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
    MemoryScope,
    MuxedConnection,
    MuxedStream,
    SecureConnection,
    StreamMuxer,
)
from p2pkit.errors import (
    ConnectionClosed,
    P2PError,
    StreamReset,
)
from p2pkit.reservation import BufferReservation
from p2pkit.tables import SHRINK_BELOW, shrink
from p2pkit_mplex._ids import PROTOCOL_ID
from p2pkit_mplex.errors import MplexControlFlood
from p2pkit_mplex.events import DataReceived, Event, StreamEnded, StreamOpened
from p2pkit_mplex.events import StreamReset as StreamResetEvent
from p2pkit_mplex.frames import StreamKey
from p2pkit_mplex.options import MplexOptions
from p2pkit_mplex.session import MplexSession
from p2pkit_mplex.slow_readers import MplexSlowReaders
from p2pkit_mplex.stream import MplexStream

__all__ = ["MplexConnection", "MplexMuxer", "MplexStream"]

_COALESCE_LIMIT = 64 * 1024
"""Small frames queued during one event-loop iteration go to the channel in one write,
or as soon as this many bytes are queued (so a writer that never yields still sees
the channel's backpressure)."""


class MplexConnection(MplexSlowReaders, MuxedConnection):
    """An mplex session over one secure channel (it is the channel's push receiver;
    pausing for slow readers is :class:`~p2pkit_mplex.slow_readers.MplexSlowReaders`'s)."""

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
        self._init_slow_readers()
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
                        stream._reserve()  # or reset it (StreamResetByLimit)
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
        if len(self._streams) < SHRINK_BELOW:
            # What a burst of streams grew goes back once they are gone (p2pkit.tables;
            # the backlog holds some of these streams).
            shrink(self._streams)
            shrink(self._backlog)
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
