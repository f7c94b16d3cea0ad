"""One yamux stream: the application's side of :class:`~p2pkit_yamux.shell.YamuxConnection`.

Reads come from the stream's :class:`~p2pkit.io.ReadBuffer`, which the connection fills
in place as frames arrive; each byte read returns its window credit to the peer once
(``YamuxConnection._consumed``) and leaves the connection's memory reservation (the read
side and its accounting are :class:`~p2pkit.buffered_stream.BufferedMuxedStream`'s,
shared with mplex).  Writes frame straight into the channel, waiting only for this stream's send
window or the channel's write gate.  The connection drives the rest (``_fail``,
``_on_remote_eof``, ``_session_ended``).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from p2pkit.abc import Buffer
from p2pkit.buffered_stream import BufferedMuxedStream
from p2pkit.errors import ResourceLimitExceeded, StreamClosed, StreamReset, StreamResetByLimit
from p2pkit.io import close_buffered_for_shutdown

if TYPE_CHECKING:
    from p2pkit.timerwheel import WheelTimer
    from p2pkit_yamux.shell import YamuxConnection


class YamuxStream(BufferedMuxedStream[int]):
    """One yamux stream.  One reader and one writer at a time."""

    def __init__(self, conn: YamuxConnection, stream_id: int, is_initiator: bool) -> None:
        super().__init__(conn._memory, conn._consumed, stream_id)
        self.stream_id = stream_id
        self.is_initiator = is_initiator
        self.protocol: str | None = None
        self._conn = conn
        self._write_closed = False
        self._read_closed = False
        self._remote_eof = False
        self._window_waiter: asyncio.Future[None] | None = None
        self._writing = False
        self._linger: WheelTimer | None = None  # closed both ways, waiting for the FIN

    def __repr__(self) -> str:
        return f"<YamuxStream {self.stream_id} {'out' if self.is_initiator else 'in'}>"

    # -- writing ---------------------------------------------------------------------

    async def write(self, data: Buffer) -> None:
        if self._error is not None:
            raise self._error
        if self._write_closed:
            raise StreamClosed(f"yamux stream {self.stream_id}: write after close_write()")
        total = len(data)
        if not total:
            return
        if self._writing:
            # Two writers would interleave their bytes at frame boundaries.
            raise RuntimeError("concurrent write() on the same stream")
        self._writing = True
        try:
            await self._write(data, total)
        finally:
            self._writing = False

    async def _write(self, data: Buffer, total: int) -> None:
        # The channel may keep a reference until the bytes are sent (3.12+): frames point
        # into ``payload``, so it must be immutable.  bytes are used as they are.
        payload = data if isinstance(data, bytes) else bytes(data)
        conn = self._conn
        session = conn._session
        channel = conn._channel
        sid = self.stream_id
        view = memoryview(payload)
        pos = 0
        while pos < total:
            if channel.write_paused:
                await conn._drain()
            if self._error is not None:
                raise self._error
            if self._write_closed:
                raise StreamClosed(f"yamux stream {sid}: closed while writing")
            if session.send_window(sid) <= 0:
                self._window_waiter = conn._loop.create_future()
                try:
                    await self._window_waiter
                finally:
                    self._window_waiter = None
                continue
            n, parts = session.send_data(sid, view[pos:] if pos else payload)
            if len(parts) == 1:
                channel.write_nowait(parts[0])
            elif parts:
                channel.write_many(parts)
            pos += n

    def _wake_writer(self) -> None:
        w = self._window_waiter
        if w is not None and not w.done():
            w.set_result(None)

    async def close_write(self) -> None:
        if self._write_closed or self._error is not None:
            return
        self._write_closed = True
        self._wake_writer()
        self._conn._send(self._conn._session.close_stream(self.stream_id))
        if self._remote_eof:
            self._conn._forget(self)

    async def close(self) -> None:
        await self.close_write()
        if self._read_closed:
            return
        self._read_closed = True
        if self._error is None:
            # Stop reading: drop what is buffered (crediting it back, so the peer is
            # never stuck on a window we will not drain) and discard later data.
            self._on_held_less(self._returned)  # the rest goes through _on_consume
            self._returned = 0
            while self._buf.size:
                self._buf.read_nowait()
            self._buf.feed_eof()
            if not self._remote_eof:
                self._linger = self._conn._linger(self)

    async def close_for_shutdown(self, reason: BaseException) -> None:
        await close_buffered_for_shutdown(
            self, self._buf, peer_finished=self._remote_eof, reason=reason
        )

    def reset(self) -> None:
        if isinstance(self._error, StreamReset):
            return
        if self._error is None:
            self._conn._send(self._conn._session.reset_stream(self.stream_id))
        self._fail(StreamReset(f"yamux stream {self.stream_id} was reset locally"))

    # -- driven by the connection -------------------------------------------------------

    def _fail(self, exc: BaseException) -> None:
        self._stop_lingering()
        self._error = exc
        self._drop_buffered(exc)
        w = self._window_waiter
        if w is not None and not w.done():
            w.set_exception(exc)
        self._conn._forget(self)

    def _reset_by_limit(self, refusal: ResourceLimitExceeded) -> None:
        """No memory for what the peer sent on this stream: reset it (RST to the peer)."""
        error = StreamResetByLimit(f"yamux stream {self.stream_id} reset: {refusal}")
        # Without its traceback: that holds the frames of data_received (the whole read
        # and its events), kept alive as long as this stream's error.
        error.__cause__ = refusal.with_traceback(None)
        if self._error is None:
            self._conn._send(self._conn._session.reset_stream(self.stream_id))
        self._fail(error)

    def _on_remote_eof(self) -> None:
        self._stop_lingering()
        self._remote_eof = True
        self._buf.feed_eof()
        if self._write_closed:
            self._conn._forget(self)

    def _stop_lingering(self) -> None:
        if self._linger is not None:
            self._linger.cancel()
            self._linger = None

    def _linger_expired(self) -> None:
        """No FIN within ``stream_close_timeout`` of our ``close()``: reset, forget."""
        self._linger = None
        if not self._remote_eof and self._error is None:
            self.reset()

    def _session_ended(self, exc: BaseException) -> None:
        """Bare EOF below us; writers fail.  A stream the peer had finished (FIN) returns
        its buffered data, then EOF.  Any other stream never got its end, so its reads
        fail too: a stream cut short must not look complete to the application."""
        if not (self._remote_eof or self._read_closed):
            self._fail(exc)
            return
        self._stop_lingering()
        self._error = exc
        self._remote_eof = True
        self._buf.feed_eof()
        w = self._window_waiter
        if w is not None and not w.done():
            w.set_exception(exc)
