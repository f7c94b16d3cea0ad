"""The yamux connection as its channel's push receiver (:class:`p2pkit.abc.Receiver`).

A base class of :class:`~p2pkit_yamux.shell.YamuxConnection`, kept apart so that each
module has one job: the shell opens, accepts and closes streams and ends the session;
this is what happens to the bytes the channel pushes, in the call that received them
(docs/architecture.md, "The data path"):

* :meth:`YamuxReceiver.data_received` parses them with the sans-IO session; each
  payload goes into its stream's :class:`~p2pkit.io.ReadBuffer` (the only copy) and is
  reserved in the connection's memory scope (one comparison per frame; a refusal resets
  that stream), window updates wake the stream's writer, and every other event goes to
  the connection (``_event``).  What the session queued on its own (ping answers, RST
  of refused SYNs, GoAway) is sent at the end of the call, and openers waiting for a
  SYN slot are woken.
* **A peer that does not read our output** gets no ping replies (go-yamux drops them
  when its send queue is full), and the control frames it sends meanwhile are counted
  (:meth:`YamuxReceiver._blocked`): beyond ``max_blocked_control_frames`` it is flooding
  and the session is aborted with :class:`~p2pkit_yamux.errors.YamuxControlFlood`.
* :meth:`YamuxReceiver.eof_received` and :meth:`YamuxReceiver.connection_lost` end the
  session (a bare EOF gracefully: streams the peer finished stay readable).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from p2pkit.errors import ConnectionClosed
from p2pkit.logs import RepeatLimiter, get_logger
from p2pkit_yamux import events as ev
from p2pkit_yamux.errors import YamuxControlFlood, YamuxProtocolError
from p2pkit_yamux.frames import HEADER_SIZE

if TYPE_CHECKING:
    import asyncio
    from collections import deque

    from p2pkit.abc import Buffer, Channel
    from p2pkit.reservation import BufferReservation
    from p2pkit_yamux.options import YamuxOptions
    from p2pkit_yamux.session import YamuxSession
    from p2pkit_yamux.stream import YamuxStream

log = get_logger("yamux")  # p2pkit.yamux (p2pkit.logs), the shell's logger
#: Lines a peer can trigger again and again are collapsed (p2pkit.logs).
_repeats = RepeatLimiter()

_DataReceived = ev.DataReceived
_WindowUpdated = ev.WindowUpdated


class YamuxReceiver:
    """See the module docstring (the connection's constructor sets what is declared
    here before it calls ``channel.start_push``)."""

    options: YamuxOptions
    _loop: asyncio.AbstractEventLoop
    _channel: Channel
    _session: YamuxSession
    _memory: BufferReservation
    """Received, unread bytes of every stream (``held``), reserved in the memory scope."""
    _streams: dict[int, YamuxStream]
    _open_waiters: deque[asyncio.Future[None]]
    _ended: BaseException | None
    _done: asyncio.Future[None]
    _closer: asyncio.Task[None] | None
    _received_at: float
    """Loop time of the last bytes from the peer (the keepalive's)."""
    _blocked_control: int
    """Control frames received while the channel is write-paused (see _blocked)."""

    if TYPE_CHECKING:  # the connection's

        def abort(self, exc: BaseException | None = None) -> None: ...
        def _send(self, data: Buffer) -> None: ...
        def _event(self, e: ev.Event) -> None: ...
        def _consumed(self, stream_id: int, n: int) -> None: ...
        def _wake_openers(self) -> None: ...
        def _end(
            self,
            exc: BaseException,
            *,
            graceful: bool,
            stream_exc: BaseException | None = None,
            close_channel: bool = True,
        ) -> None: ...

    def data_received(self, data: memoryview) -> None:
        session = self._session
        # A peer that does not read our output gets no ping replies (see _blocked).
        blocked = self._channel.write_paused
        session.answer_pings = not blocked
        dropped = session.dropped_pings if blocked else 0
        now = self._received_at = self._loop.time()
        try:
            events = session.receive_data(data, now)
        except YamuxProtocolError as exc:
            self._send(session.data_to_send())  # GoAway(1)
            self._end(exc, graceful=False)
            return
        streams = self._streams
        memory = self._memory
        for e in events:
            if type(e) is _DataReceived:
                stream = streams.get(e.stream_id)
                if stream is not None:
                    if stream._read_closed:
                        self._consumed(e.stream_id, len(e.data))
                    else:
                        payload = e.data
                        stream._buf.feed(payload)
                        memory.held += len(payload)
                        if memory.held > memory.reserved:
                            stream._reserve()  # or reset it (StreamResetByLimit)
            elif type(e) is _WindowUpdated:
                stream = streams.get(e.stream_id)
                if stream is not None:
                    stream._wake_writer()
            else:
                self._event(e)
        out = session.data_to_send()
        if blocked:
            if self._blocked(session.dropped_pings - dropped, out):
                return
        elif self._blocked_control:
            self._blocked_control = 0
        if out:
            self._send(out)
        if self._open_waiters and session.can_open:
            self._wake_openers()

    def _blocked(self, dropped: int, out: bytes) -> bool:
        """Count control frames received while the peer does not read ours.

        Ping replies were dropped; replies that cannot be dropped (RST for a refused SYN,
        GoAway) are counted too.  Beyond ``max_blocked_control_frames`` the peer is
        flooding: abort with :class:`YamuxControlFlood` (True: the session is over).
        """
        self._blocked_control += dropped + len(out) // HEADER_SIZE
        if self._blocked_control <= self.options.max_blocked_control_frames:
            return False
        if self._ended is None:
            _repeats.log(
                log,
                logging.DEBUG,
                "control-flood",
                "yamux: peer floods control frames without reading; aborting",
            )
            self.abort(YamuxControlFlood(self._blocked_control))
        return True

    def eof_received(self) -> None:
        self._end(ConnectionClosed("peer closed the connection"), graceful=True)

    def connection_lost(self, exc: BaseException | None) -> None:
        if exc is None:
            self._end(ConnectionClosed("connection closed"), graceful=True)
        else:
            err = ConnectionClosed(f"connection lost: {exc}")
            err.__cause__ = exc
            self._end(err, graceful=False)
        if self._closer is None and not self._done.done():
            self._done.set_result(None)
