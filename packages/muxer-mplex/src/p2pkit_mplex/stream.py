"""One mplex stream: the application's side of :class:`~p2pkit_mplex.shell.MplexConnection`.

Reads come from the stream's bounded :class:`~p2pkit.io.ReadBuffer`, which the
connection fills in place as messages arrive; each byte read leaves the connection's
memory reservation and may let a paused connection read again
(``MplexConnection._consumed``; mplex has no flow control: see the shell).  The read
side and its accounting are :class:`~p2pkit.buffered_stream.BufferedMuxedStream`'s,
shared with yamux.  Writes frame straight into the channel (small frames are coalesced
by the connection).  The connection drives the rest (``_on_reset``,
``_on_session_end``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from p2pkit.abc import Buffer
from p2pkit.buffered_stream import BufferedMuxedStream
from p2pkit.errors import (
    ConnectionClosed,
    ResourceLimitExceeded,
    StreamClosed,
    StreamReset,
    StreamResetByLimit,
)
from p2pkit.io import close_buffered_for_shutdown
from p2pkit_mplex.frames import StreamKey
from p2pkit_mplex.session import JOIN_LIMIT

if TYPE_CHECKING:
    from p2pkit_mplex.shell import MplexConnection

__all__ = ["MplexStream"]


class MplexStream(BufferedMuxedStream[StreamKey]):
    """One mplex stream.  Reads come from a bounded :class:`ReadBuffer`."""

    def __init__(self, conn: MplexConnection, key: StreamKey, name: str) -> None:
        super().__init__(conn._memory, conn._consumed, key)  # _error: reset or connection failure
        self._conn = conn
        self.key = key
        self.stream_id = key.id
        self.is_initiator = key.opened_by_us
        self.name = name
        self.protocol: str | None = None
        self._session = conn._session
        self._write_closed = False
        self._read_closed = False
        self._remote_closed = False  # the peer's Close arrived (our reads end with EOF)

    def __repr__(self) -> str:
        side = "out" if self.is_initiator else "in"
        return f"<MplexStream {self.stream_id}/{side} protocol={self.protocol!r}>"

    # -- ByteStream --------------------------------------------------------------------

    def _check_writable(self) -> None:
        if self._error is not None:
            raise self._error
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
            raise self._error or exc from None

    async def close_write(self) -> None:
        if self._write_closed or self._error is not None:
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
            if self._error is None:
                while self._buf.size:
                    self._buf.read_nowait()
                self._buf.feed_eof()
            self._session.release(self.key)  # our slot is free, whatever the peer does
            self._conn._forget(self)

    async def close_for_shutdown(self, reason: BaseException) -> None:
        await close_buffered_for_shutdown(
            self, self._buf, peer_finished=self._remote_closed, reason=reason
        )

    def reset(self) -> None:
        if isinstance(self._error, StreamReset):
            return
        if self._error is None:  # after a session end there is nobody to tell
            self._conn._send_control(self._session.reset_stream(self.key))
        self._error = None
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
        if self._error is None:
            self._error = exc
            self._drop_buffered(exc)
        self._conn._forget(self)

    def _on_session_end(self, exc: BaseException | None) -> None:
        """The session ended: ``exc`` None means a bare EOF below us.  A stream the peer
        had closed returns its buffered data, then EOF.  Any other stream never got its
        end, so its reads fail: a stream cut short must not look complete."""
        if self._error is not None:
            return
        if exc is None and not (self._remote_closed or self._read_closed):
            exc = ConnectionClosed("mplex connection ended before the peer closed the stream")
        if exc is None:
            self._buf.feed_eof()
            self._error = ConnectionClosed("mplex session ended")
        else:
            self._error = exc
            self._memory.held -= self._buf.size
            self._returned = 0
            self._buf.fail(exc)
