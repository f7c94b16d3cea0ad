"""The input side of the mplex session (sans-IO): the peer's bytes -> frames -> events.

A base class of :class:`~p2pkit_mplex.session.MplexSession`, kept apart so that each
module has one job: the session keeps the stream table and frames what we send; this
parses what the peer sends, checks each frame and applies it.  It works on the session's
state declared below, and adds or removes a stream only through the session
(``_open_inbound``, ``_remove``, ``_reset_slow``).

Message bodies are delivered as they arrive (a 1 MiB message split over many reads
becomes several :class:`~p2pkit_mplex.events.DataReceived` events), so a payload is
copied exactly once; only an incomplete header (at most 18 bytes) and NewStream names
(their first :data:`MAX_NAME` bytes) are kept between calls.  Small frames take a fast
path (a header of two or three bytes).

Frames naming a stream not in the table are dropped (late frames after a close or reset
are normal), but those for streams that were never opened are counted against
``max_unknown_frames``.  A protocol error raises
:class:`~p2pkit_mplex.errors.MplexProtocolError` from ``receive_data``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from p2pkit.errors import ProtocolError
from p2pkit.varint import decode_uvarint
from p2pkit_mplex.errors import MplexControlFlood, MplexFrameTooLarge, MplexProtocolError
from p2pkit_mplex.events import DataReceived, Event, StreamEnded, StreamOpened, StreamReset
from p2pkit_mplex.frames import MAX_HEADER_SIZE, Flag, StreamKey, encode_frame, key_for_incoming

if TYPE_CHECKING:
    from p2pkit.abc import Buffer
    from p2pkit_mplex.options import MplexOptions
    from p2pkit_mplex.session import _Stream

__all__ = ["MAX_NAME", "MAX_QUEUED_REPLIES", "MplexParser"]

#: Refusals (Reset of a NewStream we cannot take) queued between two ``data_to_send``
#: calls; one more is a flood (:class:`MplexControlFlood`): one large read of tiny
#: NewStream frames must not turn into a megabyte of replies.
MAX_QUEUED_REPLIES = 1024

#: A NewStream name (informational only: go and js send the decimal id) is kept up to
#: this many bytes; the rest of the frame is skipped.  Kept whole, 1 MiB names on every
#: stream held gigabytes that no memory bound counted.
MAX_NAME = 256

_HEADER = 0
_BODY = 1


class MplexParser:
    """See the module docstring (the session's constructor calls :meth:`_init_parser`)."""

    options: MplexOptions
    _streams: dict[StreamKey, _Stream]
    _next_id: int
    """Our next stream id: ours below it were opened (their late frames are stragglers)."""
    _max_remote_id: int
    """The highest stream id the peer opened (NewStream)."""
    _unknown_frames: int
    _congested: set[StreamKey]
    _hard_limit: int
    _n_inbound: int
    _outbox: list[bytes]
    _replies: int
    """Refusals in ``_outbox`` (bounded by MAX_QUEUED_REPLIES)."""
    replies_queued: int
    _error: MplexProtocolError | None
    _closed: bool

    if TYPE_CHECKING:  # the session's stream table

        def _open_inbound(self, key: StreamKey) -> None: ...
        def _remove(self, key: StreamKey) -> None: ...
        def _reset_slow(self, key: StreamKey, events: list[Event], reason: str) -> None: ...

    def _init_parser(self) -> None:
        self._state = _HEADER
        self._hdr = bytearray()
        self._body_left = 0
        self._body_flag = 0
        self._body_key = StreamKey(0, False)
        self._body_stream: _Stream | None = None
        self._name = bytearray()

    def receive_data(self, data: Buffer) -> list[Event]:
        """Parse ``data`` (any split of the byte stream) and return the events.

        Raises :class:`MplexProtocolError` (a :class:`~p2pkit.errors.MuxerError`) when
        the remote violated the protocol; the session is dead afterwards and every
        later call raises the same error.
        """
        if self._error is not None:
            raise self._error
        try:
            return self._receive(memoryview(data).cast("B"))
        except MplexProtocolError as exc:
            self._error = exc
            self._closed = True
            raise

    def _receive(self, mv: memoryview) -> list[Event]:
        events: list[Event] = []
        pos = 0
        n = len(mv)
        while pos < n:
            if self._state == _HEADER:
                # Fast path for small frames: header varint of 1 or 2 bytes (ids below
                # 2048), length of 1 byte (bodies below 128); anything else, including
                # non-minimal encodings, takes the general path.
                p = pos
                if not self._hdr and p + 2 < n:
                    b0 = mv[p]
                    if b0 < 0x80:
                        h, p = b0, p + 1
                    elif 0 < mv[p + 1] < 0x80:
                        h, p = (b0 & 0x7F) | (mv[p + 1] << 7), p + 2
                    if p > pos and mv[p] < 0x80:
                        self._start_frame(h, mv[p])
                        p += 1
                    else:
                        p = pos
                pos = p if p > pos else self._parse_header(mv, pos)
                if self._state == _BODY and self._body_left == 0:
                    self._end_frame(events)  # empty frame: complete at once
                continue
            take = min(self._body_left, n - pos)
            self._body_chunk(mv[pos : pos + take], events)
            pos += take
            self._body_left -= take
            if self._body_left == 0:
                self._end_frame(events)
        return events

    def _parse_header(self, mv: memoryview, pos: int) -> int:
        """Parse a header at ``pos``; return the new position (end of input if incomplete)."""
        held = len(self._hdr)
        if held:
            self._hdr += mv[pos : pos + MAX_HEADER_SIZE - held]
            buf: Buffer = self._hdr
            start = 0
        else:
            buf = mv
            start = pos
        try:
            first = decode_uvarint(buf, start)
            second = decode_uvarint(buf, first[1]) if first is not None else None
        except ProtocolError as exc:
            raise MplexProtocolError(f"mplex: bad frame header: {exc}") from None
        if first is None or second is None:
            if not held:
                self._hdr += mv[pos:]
            return len(mv)
        header, _ = first
        length, end = second
        if held:
            new_pos = pos + end - held
            self._hdr.clear()
        else:
            new_pos = end
        self._start_frame(header, length)
        return new_pos

    def _start_frame(self, header: int, length: int) -> None:
        flag = header & 7
        sid = header >> 3
        if flag == 7:
            raise MplexProtocolError(f"mplex: invalid flag 7 on stream {sid}")
        if length > self.options.max_message_size:
            raise MplexFrameTooLarge(
                f"mplex: frame of {length} bytes exceeds {self.options.max_message_size}"
            )
        ours = flag & 1 == 1  # a *Receiver* flag: the stream is one we opened
        st = self._streams.get((sid, ours))  # type: ignore[call-overload]
        if flag == Flag.NEW_STREAM:
            if st is not None:
                raise MplexProtocolError(f"mplex: NewStream for open stream {sid}")
            self._name.clear()
            self._body_key = StreamKey(sid, False)
        elif st is None:
            self._note_unknown(key_for_incoming(sid, flag))
        else:
            self._body_key = st.key
        self._body_stream = st
        self._body_flag = flag
        self._body_left = length
        self._state = _BODY

    def _note_unknown(self, key: StreamKey) -> None:
        """A frame for a stream not in the table: a straggler, or a stream never opened."""
        if key.opened_by_us:
            straggler = key.id < self._next_id
        else:
            straggler = key.id <= self._max_remote_id
        if not straggler:
            self._unknown_frames += 1
            if self._unknown_frames > self.options.max_unknown_frames:
                raise MplexProtocolError(
                    f"mplex: more than {self.options.max_unknown_frames} frames "
                    "for streams that were never opened"
                )

    def _body_chunk(self, chunk: memoryview, events: list[Event]) -> None:
        flag = self._body_flag
        if flag == Flag.MESSAGE_RECEIVER or flag == Flag.MESSAGE_INITIATOR:
            st = self._body_stream
            if st is None or st.removed or st.remote_closed:
                return  # late data (go-mplex drops it too)
            key = st.key
            size = len(chunk)
            buffered = st.buffered + size
            if buffered > self._hard_limit:
                self._reset_slow(
                    key, events, f"reader fell more than {self._hard_limit} bytes behind"
                )
                return
            st.buffered = buffered
            if buffered > self.options.max_stream_buffer:
                self._congested.add(key)
            events.append(DataReceived(key, bytes(chunk)))
        elif flag == Flag.NEW_STREAM:
            room = MAX_NAME - len(self._name)  # the rest of a longer name is skipped
            if room > 0:
                self._name += chunk[:room]
        # Close and Reset carry no data; a body is tolerated and skipped.

    def _end_frame(self, events: list[Event]) -> None:
        self._state = _HEADER
        flag = self._body_flag
        key = self._body_key
        if flag == Flag.NEW_STREAM:
            self._max_remote_id = max(self._max_remote_id, key.id)
            if self._closed or self._n_inbound >= self.options.max_streams:
                if self._replies >= MAX_QUEUED_REPLIES:
                    raise MplexControlFlood(
                        f"mplex: more than {MAX_QUEUED_REPLIES} refused NewStream frames"
                        " in one batch"
                    )
                self._outbox.append(encode_frame(key.id, Flag.RESET_RECEIVER))
                self._replies += 1
                self.replies_queued += 1
                return
            self._open_inbound(key)
            events.append(StreamOpened(key, self._name.decode("utf-8", "replace")))
        elif flag == Flag.CLOSE_RECEIVER or flag == Flag.CLOSE_INITIATOR:
            st = self._body_stream
            if st is None or st.removed or st.remote_closed:
                return  # duplicate Close: tolerated, as go-mplex does
            st.remote_closed = True
            events.append(StreamEnded(key))
            if st.local_closed:
                self._remove(key)
        elif flag == Flag.RESET_RECEIVER or flag == Flag.RESET_INITIATOR:
            st = self._body_stream
            if st is not None and not st.removed:
                self._remove(key)
                events.append(StreamReset(key, by_remote=True, reason="reset by the remote"))
