"""The input side of the yamux session (sans-IO): the peer's bytes -> frames -> events.

A base class of :class:`~p2pkit_yamux.session.YamuxSession`, kept apart so that each
module has one job: the session keeps the books (streams, counters, windows) and frames
what we send; this parses what the peer sends, checks each frame against the protocol
and applies it.  It works on the session's state declared below, and adds or removes a
stream only through the session (``_open_inbound``, ``_remove``).

Parsing copies each payload once: consecutive Data frames of one stream within a read
become one :class:`~p2pkit_yamux.events.DataReceived`, and a read inside a large
payload takes a fast path; only an incomplete 12-byte header is kept between calls.

What we tolerate, because real peers do it (see docs/interop.md): frames for unknown or
closed stream ids (Data payload discarded), window updates after close, unknown GoAway
codes, unsolicited ping ACKs (ignored, never answered), data before the ACK of our SYN.
What ends the session with GoAway(1) (:class:`~p2pkit_yamux.errors.YamuxProtocolError`
from ``receive_data``): bad version, unknown type, SYN for an id in use, SYN with the
wrong parity or id 0, more data than the window we granted, a second FIN, data after FIN.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from p2pkit_yamux import frames as fr
from p2pkit_yamux.errors import YamuxControlFlood, YamuxGoAway, YamuxProtocolError
from p2pkit_yamux.events import (
    ConnectionTerminated,
    DataReceived,
    Event,
    GoAwayReceived,
    PingReceived,
    PongReceived,
    StreamAcked,
    StreamEOF,
    StreamOpened,
    StreamReset,
    WindowUpdated,
)

if TYPE_CHECKING:
    from p2pkit.abc import Buffer
    from p2pkit_yamux.flow import WindowBudget
    from p2pkit_yamux.options import YamuxOptions
    from p2pkit_yamux.session import StreamState

__all__ = ["MAX_QUEUED_REPLIES", "YamuxParser"]

_HEADER = fr.HEADER
_unpack_from = fr.HEADER.unpack_from
_pack = fr.HEADER.pack

#: Replies (ping ACKs, RSTs of refused SYNs) queued between two ``data_to_send`` calls.
#: Beyond it ping replies are dropped and a refused SYN is a flood (YamuxControlFlood):
#: one large read of tiny frames must not turn into a megabyte of replies.
MAX_QUEUED_REPLIES = 1024


def _fatal(reason: str, message: str) -> YamuxProtocolError:
    return YamuxProtocolError(reason, message)


def _flush(events: list[Event], stream_id: int, pieces: list[memoryview]) -> None:
    """Copy the collected payload pieces (views, valid only now) into one event."""
    data = bytes(pieces[0]) if len(pieces) == 1 else b"".join(pieces)
    pieces.clear()
    events.append(DataReceived(stream_id, data))


class YamuxParser:
    """See the module docstring (the session's constructor calls :meth:`_init_parser`)."""

    options: YamuxOptions
    streams: dict[int, StreamState]
    rtt: float | None
    goaway_sent: int | None
    goaway_received: int | None
    terminated: ConnectionTerminated | None
    error: YamuxProtocolError | None
    answer_pings: bool
    dropped_pings: int
    _remote_parity: int
    """The low bit of the stream ids the peer may open (SYN)."""
    _outbox: list[bytes]
    _replies: int
    """Frames the session queued in ``_outbox`` (bounded by MAX_QUEUED_REPLIES)."""
    _budget: WindowBudget
    _inbound_pending: int
    _inbound_open: int
    _unacked: int
    _peer_acked: bool
    _pings: dict[int, float]
    """Our pings awaiting their ACK: value -> time sent."""

    if TYPE_CHECKING:  # the session's bookkeeping

        def _open_inbound(self, sid: int, now: float | None) -> StreamState: ...
        def _remove(self, st: StreamState) -> None: ...

    def _init_parser(self) -> None:
        self._hdr = bytearray()
        self._left = 0  # payload bytes of the current Data frame still to come
        self._cur: StreamState | None = None  # its stream (None: discard the payload)
        self._cur_fin = False  # FIN to apply once the payload is complete

    def receive_data(self, data: Buffer, now: float | None = None) -> list[Event]:
        """Parse bytes from the peer.  ``data`` is only read during the call.

        Raises :class:`~p2pkit_yamux.errors.YamuxProtocolError` (a ``MuxerError``)
        when the peer broke the protocol, with GoAway(1) queued in
        :meth:`data_to_send`; events of the same call are dropped (the session is
        over) and every later call raises the same error.  After a GoAway with an
        error code (:class:`ConnectionTerminated`) later input is ignored.
        """
        events: list[Event] = []
        if self.terminated is not None:
            if self.error is not None:
                raise self.error
            return events
        mv = memoryview(data)
        if mv.format != "B" or mv.ndim != 1:
            mv = mv.cast("B")
        n = len(mv)
        left = self._left
        if left > n:
            # Fast path (large frames): the whole chunk is inside the current payload.
            self._left = left - n
            cur = self._cur
            if cur is not None:
                events.append(DataReceived(cur.stream_id, bytes(mv)))
            return events
        pos = 0
        # Payload pieces of consecutive Data frames of the same stream within this chunk
        # are joined into one bytes object (one copy, and the reader gets one chunk
        # instead of several it would have to join again).
        pieces: list[memoryview] = []
        piece_sid = 0
        try:
            while pos < n:
                left = self._left
                if left:
                    take = n - pos if n - pos < left else left
                    cur = self._cur
                    if cur is not None:
                        if pieces and piece_sid != cur.stream_id:
                            _flush(events, piece_sid, pieces)
                        piece_sid = cur.stream_id
                        pieces.append(mv[pos : pos + take])
                    pos += take
                    left -= take
                    self._left = left
                    if not left and self._cur_fin:
                        if pieces:
                            _flush(events, piece_sid, pieces)
                        self._end_payload(events)
                    elif not left:
                        self._cur = None
                    continue
                hdr = self._hdr
                if hdr:
                    take = min(fr.HEADER_SIZE - len(hdr), n - pos)
                    hdr += mv[pos : pos + take]
                    pos += take
                    if len(hdr) < fr.HEADER_SIZE:
                        break
                    fields = _HEADER.unpack(hdr)
                    hdr.clear()
                elif n - pos >= fr.HEADER_SIZE:
                    fields = _unpack_from(mv, pos)
                    pos += fr.HEADER_SIZE
                else:
                    hdr += mv[pos:]
                    break
                if pieces and (fields[1] != fr.TYPE_DATA or fields[2] or fields[3] != piece_sid):
                    _flush(events, piece_sid, pieces)  # anything but more of the same data
                self._frame(fields[0], fields[1], fields[2], fields[3], fields[4], events, now)
                if self.terminated is not None:
                    break
            if pieces:
                _flush(events, piece_sid, pieces)
        except YamuxProtocolError as exc:
            self._outbox.append(fr.go_away(fr.GO_AWAY_PROTOCOL_ERROR))
            self.goaway_sent = fr.GO_AWAY_PROTOCOL_ERROR
            self.error = exc
            self.terminated = ConnectionTerminated(exc.reason, exc)
            raise
        return events

    def _frame(
        self,
        version: int,
        ftype: int,
        flags: int,
        sid: int,
        length: int,
        events: list[Event],
        now: float | None,
    ) -> None:
        if version != fr.VERSION:
            raise _fatal("bad-version", f"frame version {version} (only 0 exists)")
        if ftype <= fr.TYPE_WINDOW_UPDATE:
            self._stream_frame(ftype, flags, sid, length, events, now)
        elif ftype == fr.TYPE_PING:
            if flags & fr.FLAG_SYN:
                if self.answer_pings and self._replies < MAX_QUEUED_REPLIES:
                    self._outbox.append(fr.ping(length, fr.FLAG_ACK))
                    self._replies += 1
                else:
                    self.dropped_pings += 1
                events.append(PingReceived(length))
            elif flags & fr.FLAG_ACK:
                sent = self._pings.pop(length, None)
                if sent is not None:  # an unsolicited ACK is ignored
                    rtt = float("nan")
                    if now is not None:
                        rtt = max(now - sent, 0.0)
                        self.rtt = rtt
                    events.append(PongReceived(length, rtt))
        elif ftype == fr.TYPE_GO_AWAY:
            self.goaway_received = length
            events.append(GoAwayReceived(length))
            if length != fr.GO_AWAY_NORMAL:
                term = ConnectionTerminated("remote-goaway", YamuxGoAway(length))
                self.terminated = term
                events.append(term)
        else:
            raise _fatal("unknown-type", f"frame type {ftype} (known: 0..3)")

    def _stream_frame(
        self,
        ftype: int,
        flags: int,
        sid: int,
        length: int,
        events: list[Event],
        now: float | None,
    ) -> None:
        is_data = ftype == fr.TYPE_DATA
        st = self.streams.get(sid)
        if flags & fr.FLAG_SYN:
            if sid == 0:
                raise _fatal("syn-on-session", "SYN for stream id 0 (reserved for the session)")
            if st is not None:
                raise _fatal("duplicate-syn", f"SYN for stream {sid}, which is already open")
            if sid & 1 != self._remote_parity:
                raise _fatal("wrong-parity", f"SYN for stream {sid}: that id is ours to use")
            opts = self.options
            if (
                self.goaway_sent is not None
                or self.goaway_received is not None
                or self._inbound_pending >= opts.accept_backlog
                or self._inbound_open >= opts.max_streams
                or not self._budget.has_room(opts.initial_window)
            ):
                if self._replies >= MAX_QUEUED_REPLIES:
                    raise YamuxControlFlood(MAX_QUEUED_REPLIES, in_one_batch=True)
                self._outbox.append(_pack(0, fr.TYPE_WINDOW_UPDATE, fr.FLAG_RST, sid, 0))
                self._replies += 1
                if is_data:
                    self._skip(length)
                return
            st = self._open_inbound(sid, now)
            events.append(StreamOpened(sid))
        elif st is None:
            # Unknown or already closed stream (peers send late window updates, data,
            # FIN, RST after close): tolerated, payload discarded.
            if is_data:
                self._skip(length)
            return
        if flags & fr.FLAG_ACK and not st.acked:
            st.acked = True
            self._unacked -= 1
            self._peer_acked = True
            events.append(StreamAcked(sid))
        if flags & fr.FLAG_RST:
            self._remove(st)
            events.append(StreamReset(sid))
            if is_data:
                self._skip(length)
            return
        if not is_data:
            if length:
                st.send_window += length
                events.append(WindowUpdated(sid, st.send_window))
            if flags & fr.FLAG_FIN:
                self._remote_fin(st, events)
            return
        if length:
            if st.remote_fin:
                raise _fatal("data-after-fin", f"{length} data bytes on stream {sid} after FIN")
            if not st.recv.receive(length):
                raise _fatal(
                    "window-overrun",
                    f"{length} data bytes on stream {sid}, window granted {st.recv.available}",
                )
            self._left = length
            self._cur = st
            self._cur_fin = bool(flags & fr.FLAG_FIN)
        elif flags & fr.FLAG_FIN:
            self._remote_fin(st, events)

    def _skip(self, length: int) -> None:
        self._left = length
        self._cur = None
        self._cur_fin = False

    def _end_payload(self, events: list[Event]) -> None:
        st = self._cur
        self._cur = None
        if st is not None and self._cur_fin:
            self._cur_fin = False
            self._remote_fin(st, events)

    def _remote_fin(self, st: StreamState, events: list[Event]) -> None:
        if st.remote_fin:
            raise _fatal("second-fin", f"second FIN on stream {st.stream_id}")
        st.remote_fin = True
        events.append(StreamEOF(st.stream_id))
        if st.local_fin:
            self._remove(st)
