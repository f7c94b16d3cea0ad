"""asyncio shell around :class:`~p2pkit_yamux.session.YamuxSession`.

Data path (docs/architecture.md, "The data path"): the channel runs in push mode;
``data_received`` parses the bytes in place and copies each payload once into its stream's
:class:`~p2pkit.io.ReadBuffer` (the only copy; :mod:`p2pkit_yamux.receiver`).  No task
per stream and no reader task: the keepalive timers live in the event loop's shared
timer wheel (:mod:`p2pkit.timerwheel`: one loop handle per slot, not one per session;
the keepalive rules are in :mod:`p2pkit_yamux.keepalive`); the one background task a
session may have closes the channel at the end.  Writers frame straight into
``channel.write_nowait`` and wait only for their own send window or for the channel's
write gate, so a slow reader throttles its own sender and nobody else.

Memory: bytes received and not yet read are reserved in the connection's memory scope
(``new_session(memory=...)``, the resource manager) through
:class:`~p2pkit.reservation.BufferReservation`: one integer comparison per frame; a
reservation call when buffering starts or swings by 256 KiB, a release once drained.  A
refusal resets the stream the data came on (:class:`~p2pkit.errors.StreamResetByLimit`
here, RST to the peer); the session goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Sequence

from p2pkit.abc import (
    Buffer,
    Channel,
    MemoryScope,
    MuxedConnection,
    SecureConnection,
    StreamMuxer,
)
from p2pkit.errors import (
    ConnectionClosed,
    ResourceLimitExceeded,
    StreamClosed,
    StreamReset,
)
from p2pkit.logs import get_logger
from p2pkit.reservation import BufferReservation
from p2pkit.tables import SHRINK_BELOW, shrink
from p2pkit.timerwheel import WheelTimer, timer_wheel
from p2pkit_yamux import events as ev
from p2pkit_yamux._ids import PROTOCOL_ID
from p2pkit_yamux.frames import GO_AWAY_NORMAL
from p2pkit_yamux.keepalive import YamuxKeepalive
from p2pkit_yamux.options import YamuxOptions
from p2pkit_yamux.receiver import YamuxReceiver
from p2pkit_yamux.session import YamuxSession
from p2pkit_yamux.stream import YamuxStream

log = get_logger("yamux")  # p2pkit.yamux (p2pkit.logs)


class YamuxMuxer(StreamMuxer):
    """Factory of yamux sessions (``/yamux/1.0.0``)."""

    protocol_id = PROTOCOL_ID
    accepts_memory_scope = True

    def __init__(self, options: YamuxOptions | None = None) -> None:
        self.options = options or YamuxOptions()

    def new_session(
        self, conn: SecureConnection, *, is_initiator: bool, memory: MemoryScope | None = None
    ) -> YamuxConnection:
        return YamuxConnection(conn, is_initiator=is_initiator, options=self.options, memory=memory)


class YamuxConnection(YamuxReceiver, YamuxKeepalive, MuxedConnection):
    """A yamux session over a channel (see the module docstring; what the channel
    pushes is :class:`~p2pkit_yamux.receiver.YamuxReceiver`'s, the keepalive
    :class:`~p2pkit_yamux.keepalive.YamuxKeepalive`'s)."""

    def __init__(
        self,
        channel: Channel,
        *,
        is_initiator: bool,
        options: YamuxOptions,
        memory: MemoryScope | None = None,
    ) -> None:
        self._loop = asyncio.get_running_loop()
        # Received, unread bytes of every stream, reserved in ``memory`` (see module doc).
        self._memory = BufferReservation(memory)
        self._channel = channel
        self.options = options
        self.is_initiator = is_initiator
        self._session = YamuxSession(is_initiator=is_initiator, options=options)
        self._streams: dict[int, YamuxStream] = {}
        # Inbound streams not yet accepted, oldest first (a dict: one reset by the peer
        # leaves at once, so the session's accept_backlog bounds this too).
        self._accept_queue: dict[int, YamuxStream] = {}
        self._accept_waiter: asyncio.Future[None] | None = None
        self._open_waiters: deque[asyncio.Future[None]] = deque()  # FIFO, woken per free slot
        self._ended: BaseException | None = None
        self._closing = False
        self._drained: asyncio.Future[None] | None = None  # set when no stream is left
        self._done: asyncio.Future[None] = self._loop.create_future()
        self._closer: asyncio.Task[None] | None = None
        self._drain_lock = asyncio.Lock()
        self._updates: list[bytes] | None = None  # batched window updates (see _consumed)
        self._wheel = timer_wheel(self._loop)  # keepalive and stream linger timers
        self._init_keepalive()
        self._blocked_control = 0  # control frames received while write_paused (_blocked)
        channel.start_push(self)
        if self._ended is None:
            if options.ping_on_start:
                self._send(self._session.ping(self._loop.time())[1])
            self._schedule_keepalive()

    # -- public API ------------------------------------------------------------------

    @property
    def session(self) -> YamuxSession:
        """The sans-IO state machine (read-only use: RTT, windows, counters)."""
        return self._session

    @property
    def channel(self) -> Channel:
        return self._channel

    @property
    def is_closed(self) -> bool:
        return self._ended is not None

    @property
    def ended_by(self) -> BaseException | None:
        """Why the session ended (a typed error such as
        :class:`~p2pkit_yamux.errors.YamuxControlFlood`, or ConnectionClosed for an
        ordinary end); None while it is open."""
        return self._ended

    @property
    def streams(self) -> Sequence[YamuxStream]:
        return list(self._streams.values())

    async def open_stream(self) -> YamuxStream:
        session = self._session
        while True:
            if self._ended is not None:
                raise ConnectionClosed(f"yamux session is closed: {self._ended}")
            if self._closing or session.goaway_received is not None:
                raise ConnectionClosed("yamux session is going away: no new streams")
            if session.can_open:
                break
            if session.ids_exhausted:  # waiting would never end
                raise ResourceLimitExceeded("yamux stream ids exhausted")
            fut = self._loop.create_future()
            self._open_waiters.append(fut)
            try:
                await fut
            except BaseException:
                if fut.cancelled():
                    with contextlib.suppress(ValueError):
                        self._open_waiters.remove(fut)
                self._wake_openers()  # a slot we were woken for goes to the next waiter
                raise
        sid, frame = session.open_stream(self._loop.time())
        stream = YamuxStream(self, sid, True)
        self._streams[sid] = stream
        self._send(frame)
        return stream

    async def accept_stream(self) -> YamuxStream:
        while True:
            if self._accept_queue:
                stream = self._accept_queue.pop(next(iter(self._accept_queue)))
                self._send(self._session.accept(stream.stream_id))
                return stream
            if self._ended is not None:
                raise ConnectionClosed(f"yamux session is closed: {self._ended}")
            if self._closing or self._session.goaway_received is not None:
                raise ConnectionClosed("yamux session is going away: no new streams")
            if self._accept_waiter is not None:
                raise RuntimeError("concurrent accept_stream() on the same session")
            self._accept_waiter = self._loop.create_future()
            try:
                await self._accept_waiter
            finally:
                self._accept_waiter = None

    async def close(self) -> None:
        """GoAway(0), let open streams finish (at most ``close_timeout``), close the channel.

        A caller cancelled while streams finish ends the session at once (they are
        reset); a second caller waits for the first one's close."""
        if self._closing or self._ended is not None:
            await self.wait_closed()
            return
        self._closing = True
        self._send(self._session.go_away(GO_AWAY_NORMAL))
        # Inbound streams nobody accepted yet never will be (accept_stream now raises).
        for stream in list(self._accept_queue.values()):
            stream.reset()
        self._accept_queue.clear()
        self._wake_accept()
        self._fail_openers(ConnectionClosed("yamux session is closing"))
        # Streams we closed both ways only wait for the peer's FIN: nothing of ours is
        # left to deliver, so they do not hold the session open.
        for stream in list(self._streams.values()):
            if stream._write_closed and stream._read_closed:
                self._forget(stream)
        if self._streams:
            self._drained = self._loop.create_future()
            try:
                await asyncio.wait_for(asyncio.shield(self._drained), self.options.close_timeout)
            except TimeoutError:
                log.debug("yamux close: %d streams still open, resetting", len(self._streams))
            except asyncio.CancelledError:
                # The caller gave up waiting: end now rather than never (the GoAway is
                # out, and no later close() would finish this one).
                self._finish_close()
                raise
        self._finish_close()
        await self.wait_closed()

    def _finish_close(self) -> None:
        for stream in list(self._streams.values()):
            stream.reset()
        self._end(ConnectionClosed("yamux session closed"), graceful=False)

    def abort(self, exc: BaseException | None = None) -> None:
        if self._done.done():
            return
        reason = exc or ConnectionClosed("yamux session aborted")
        self._end(
            reason,
            graceful=False,
            stream_exc=StreamReset(f"session aborted: {reason}"),
            close_channel=False,
        )
        self._channel.reset()
        if not self._done.done():
            self._done.set_result(None)

    async def wait_closed(self) -> None:
        await asyncio.shield(self._done)

    # -- session events (the rest come in YamuxReceiver.data_received) ----------------

    def _event(self, e: ev.Event) -> None:
        """A session event other than data and window updates: streams opened, ended or
        reset by the peer, pongs, GoAway."""
        if isinstance(e, ev.StreamOpened):
            new = YamuxStream(self, e.stream_id, False)
            self._streams[e.stream_id] = new
            self._accept_queue[e.stream_id] = new
            self._wake_accept()
        elif isinstance(e, ev.StreamEOF):
            stream = self._streams.get(e.stream_id)
            if stream is not None:
                stream._on_remote_eof()
        elif isinstance(e, ev.StreamReset):
            stream = self._streams.get(e.stream_id)
            # Not accepted yet: gone from the queue (a SYN|RST flood must not fill it).
            self._accept_queue.pop(e.stream_id, None)
            if stream is not None:
                stream._fail(StreamReset(f"yamux stream {e.stream_id} was reset by the peer"))
        elif isinstance(e, ev.PongReceived):
            self._pong_received(e.value)
        elif isinstance(e, ev.GoAwayReceived):
            self._wake_accept()
            self._fail_openers(ConnectionClosed(f"peer sent GoAway({e.code})"))
        elif isinstance(e, ev.ConnectionTerminated):  # the peer's GoAway with an error
            self._end(e.error, graceful=False)

    # -- internals -------------------------------------------------------------------

    def _send(self, data: Buffer) -> None:
        if not data or self._done.done():
            return
        try:
            self._channel.write_nowait(data)
        except (ConnectionClosed, StreamClosed):
            pass  # the session is ending; connection_lost tells the streams

    async def _drain(self) -> None:
        """Wait for the channel's write gate, one writer at a time (FIFO).

        With many streams writing, waiting on the gate directly would wake every writer
        at each resume, and all but the first would find it paused again.
        """
        async with self._drain_lock:
            if self._channel.write_paused:
                await self._channel.drain()

    def _consumed(self, stream_id: int, n: int) -> None:
        if self._ended is None:
            frame = self._session.consumed(stream_id, n, self._loop.time())
            if not frame:
                return
            # The first window update of a loop iteration goes out at once (a sender may
            # be waiting for it); the others of the same iteration (many readers woken
            # together) are sent in one write at its end: one syscall, not one each.
            updates = self._updates
            if updates is None:
                self._send(frame)
                self._updates = []
                self._loop.call_soon(self._flush_updates)
            else:
                updates.append(frame)

    def _flush_updates(self) -> None:
        updates = self._updates
        self._updates = None
        if updates and self._ended is None:
            self._send(updates[0] if len(updates) == 1 else b"".join(updates))

    def _forget(self, stream: YamuxStream) -> None:
        if self._streams.pop(stream.stream_id, None) is None:
            return
        if len(self._streams) < SHRINK_BELOW:
            # What a burst of streams grew goes back once they are gone (p2pkit.tables;
            # the accept queue holds some of these streams).
            shrink(self._streams)
            shrink(self._accept_queue)
        if self._open_waiters and self._session.can_open:
            self._wake_openers()
        d = self._drained
        if d is not None and not self._streams and not d.done():
            d.set_result(None)

    def _linger(self, stream: YamuxStream) -> WheelTimer | None:
        """Time ``stream`` out ``stream_close_timeout`` after we closed it both ways."""
        delay = self.options.stream_close_timeout
        if delay <= 0 or self._ended is not None:
            return None
        return self._wheel.call_later(delay, stream._linger_expired)

    def _wake_accept(self) -> None:
        w = self._accept_waiter
        if w is not None and not w.done():
            w.set_result(None)

    def _wake_openers(self) -> None:
        """Wake as many waiting openers as there are free SYN slots (no thundering herd)."""
        waiters = self._open_waiters
        free = self._session.unacked_limit - self._session.unacked_outbound
        while free > 0 and waiters:
            w = waiters.popleft()
            if not w.done():
                w.set_result(None)
                free -= 1

    def _fail_openers(self, exc: BaseException) -> None:
        waiters = self._open_waiters
        while waiters:
            w = waiters.popleft()
            if not w.done():
                w.set_exception(exc)

    def _end(
        self,
        exc: BaseException,
        *,
        graceful: bool,
        stream_exc: BaseException | None = None,
        close_channel: bool = True,
    ) -> None:
        """The session is over: settle every stream and waiter, then close the channel."""
        if self._ended is not None:
            return
        self._ended = exc
        self._stop_keepalive()
        streams = list(self._streams.values())
        self._streams.clear()
        self._accept_queue.clear()
        for stream in streams:
            if graceful:
                stream._session_ended(exc)
            elif stream._error is None:
                stream._fail(stream_exc or exc)
        self._memory.close()  # what graceful streams still buffer is no longer counted
        if self._accept_waiter is not None and not self._accept_waiter.done():
            self._accept_waiter.set_result(None)  # it re-checks and raises ConnectionClosed
        self._fail_openers(ConnectionClosed(f"yamux session is closed: {exc}"))
        d = self._drained
        if d is not None and not d.done():
            d.set_result(None)
        if close_channel and not self._done.done() and self._closer is None:
            self._closer = self._loop.create_task(self._close_channel())

    async def _close_channel(self) -> None:
        try:
            await self._channel.close()
        except Exception as exc:  # the channel is going away either way
            log.debug("yamux: closing the channel failed: %r", exc)
        finally:
            if not self._done.done():
                self._done.set_result(None)
