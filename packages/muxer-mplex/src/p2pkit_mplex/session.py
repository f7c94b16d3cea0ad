"""The mplex protocol as a pure state machine (sans-IO): bytes in, events and bytes out.

No sockets, no asyncio, no clocks.  The asyncio shell (:mod:`p2pkit_mplex.shell`) feeds
received bytes to :meth:`MplexSession.receive_data`, turns the returned events into
stream operations, sends what the ``open``/``send``/``close``/``reset`` methods return,
and after every ``receive_data`` sends :meth:`MplexSession.data_to_send` (frames the
session produced by itself: resets of overflowing or refused streams).

Message bodies are delivered as they arrive (a 1 MiB message split over many reads
becomes several :class:`DataReceived` events), so a payload is copied exactly once,
from the caller's buffer into the event's ``bytes``; only an incomplete header (at
most 18 bytes) and NewStream names (their first :data:`MAX_NAME` bytes) are kept
between calls.
"""

from __future__ import annotations

import dataclasses

from p2pkit.abc import Buffer
from p2pkit.errors import (
    ConnectionClosed,
    MessageTooLarge,
    MuxerError,
    ProtocolError,
    ResourceLimitExceeded,
    StreamClosed,
)
from p2pkit.varint import decode_uvarint, encode_uvarint
from p2pkit_mplex.frames import (
    MAX_HEADER_SIZE,
    Flag,
    StreamKey,
    encode_frame,
    key_for_incoming,
    outgoing_flag,
)
from p2pkit_mplex.options import MplexOptions

__all__ = [
    "DataReceived",
    "Event",
    "MplexControlFlood",
    "MplexFrameTooLarge",
    "MplexProtocolError",
    "MplexSession",
    "StreamEnded",
    "StreamOpened",
    "StreamReset",
]


_ONE_BYTE = [bytes((i,)) for i in range(128)]

#: Writes up to this size are framed as one joined ``bytes`` (:meth:`MplexSession.send_data`
#: and :meth:`MplexSession.send_data_parts` alike); larger ones as header/payload pairs
#: (no copy of an immutable payload).  The shell relies on that split (it imports this).
JOIN_LIMIT = 64 * 1024

#: Refusals (Reset of a NewStream we cannot take) queued between two ``data_to_send``
#: calls; one more is a flood (:class:`MplexControlFlood`): one large read of tiny
#: NewStream frames must not turn into a megabyte of replies.
MAX_QUEUED_REPLIES = 1024

#: A NewStream name (informational only: go and js send the decimal id) is kept up to
#: this many bytes; the rest of the frame is skipped.  Kept whole, 1 MiB names on every
#: stream held gigabytes that no memory bound counted.
MAX_NAME = 256


def _len_varint(n: int) -> bytes:
    return _ONE_BYTE[n] if n < 128 else encode_uvarint(n)


class MplexProtocolError(MuxerError):
    """The remote violated mplex; the whole connection must be closed."""


class MplexFrameTooLarge(MplexProtocolError, MessageTooLarge):
    """An incoming frame announced more than ``max_message_size`` bytes."""


class MplexControlFlood(MplexProtocolError):
    """The peer kept making us reply (e.g. NewStream beyond ``max_streams``, each answered
    with a Reset) while not reading our replies (``max_blocked_control_frames``)."""


# -- events ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class StreamOpened:
    """The remote opened a stream (NewStream); ``name`` is informational only."""

    key: StreamKey
    name: str


@dataclasses.dataclass(frozen=True, slots=True)
class DataReceived:
    """Payload for an open stream.  Report it consumed with :meth:`MplexSession.consumed`."""

    key: StreamKey
    data: bytes


@dataclasses.dataclass(frozen=True, slots=True)
class StreamEnded:
    """The remote half-closed the stream: EOF after the data already delivered."""

    key: StreamKey


@dataclasses.dataclass(frozen=True, slots=True)
class StreamReset:
    """The stream is gone: reset by the remote (``by_remote``) or by the session itself
    because its reader fell too far behind (see :attr:`MplexSession.congested`)."""

    key: StreamKey
    by_remote: bool
    reason: str


Event = StreamOpened | DataReceived | StreamEnded | StreamReset


# -- per-stream state -------------------------------------------------------------------


class _Stream:
    __slots__ = ("buffered", "key", "local_closed", "msg_prefix", "remote_closed", "removed")

    def __init__(self, key: StreamKey) -> None:
        self.key = key
        self.local_closed = False
        self.remote_closed = False
        self.removed = False
        self.buffered = 0  # delivered to the application, not yet consumed
        # Header varint of our Message frames on this stream (computed once).
        self.msg_prefix = encode_uvarint(key.id << 3 | outgoing_flag(key, Flag.MESSAGE_RECEIVER))


_HEADER = 0
_BODY = 1


class MplexSession:
    """One side of an mplex connection.

    Streams are keyed by :class:`StreamKey` ``(id, opened_by_us)``.  A stream leaves the
    table when both sides have closed it or when either side reset it; frames naming
    a stream not in the table are dropped (late frames after a close/reset are normal),
    but frames for streams that never existed are counted against
    ``max_unknown_frames``.
    """

    def __init__(self, *, is_initiator: bool, options: MplexOptions | None = None) -> None:
        self.is_initiator = is_initiator
        self.options = options or MplexOptions()
        self._streams: dict[StreamKey, _Stream] = {}
        self._n_outbound = 0
        self._n_inbound = 0
        self._next_id = 0
        self._max_remote_id = -1
        self._unknown_frames = 0
        self._congested: set[StreamKey] = set()
        self._hard_limit = self.options.hard_stream_buffer
        self._outbox: list[bytes] = []
        self._replies = 0  # refusals in _outbox (bounded by MAX_QUEUED_REPLIES)
        self.replies_queued = 0
        """Frames queued for :meth:`data_to_send` so far (resets the session sent on its
        own): the shell bounds how many pile up while the peer does not read."""
        self._error: MplexProtocolError | None = None
        self._closed = False
        # Parser state.
        self._state = _HEADER
        self._hdr = bytearray()
        self._body_left = 0
        self._body_flag = 0
        self._body_key = StreamKey(0, False)
        self._body_stream: _Stream | None = None
        self._name = bytearray()

    # -- inspection ----------------------------------------------------------------------

    @property
    def error(self) -> MplexProtocolError | None:
        """The protocol error :meth:`receive_data` raised, if any (raised again by every
        later call)."""
        return self._error

    @property
    def closed(self) -> bool:
        """True after :meth:`close` or a protocol error: no new streams."""
        return self._closed

    def stream_keys(self) -> list[StreamKey]:
        return list(self._streams)

    def has_stream(self, key: StreamKey) -> bool:
        return key in self._streams

    @property
    def congested(self) -> bool:
        """True while some stream holds more than ``max_stream_buffer`` unread bytes.

        mplex has no flow control: the shell then stops reading the connection (so
        TCP slows the sender down) until :meth:`consumed` brings every stream back
        under the bound, or resets the laggards with :meth:`reset_congested` when
        that takes longer than ``slow_reader_timeout``.
        """
        return bool(self._congested)

    def reset_congested(self) -> list[Event]:
        """Reset every stream over ``max_stream_buffer``; the Reset frames go to
        :meth:`data_to_send`.  Returns the :class:`StreamReset` events."""
        events: list[Event] = []
        for key in list(self._congested):
            self._reset_slow(
                key,
                events,
                f"reader stayed more than {self.options.max_stream_buffer}"
                f" bytes behind for {self.options.slow_reader_timeout} s",
            )
        return events

    def buffered(self, key: StreamKey) -> int:
        st = self._streams.get(key)
        return st.buffered if st is not None else 0

    # -- sending -----------------------------------------------------------------------

    def open_stream(self, name: str | None = None) -> tuple[StreamKey, bytes]:
        """Allocate the next id and return the NewStream frame to send.

        The name defaults to the decimal id, as go-mplex and js-libp2p send it.
        """
        if self._closed:
            raise ConnectionClosed("mplex session is closed")
        if self._n_outbound >= self.options.max_streams:
            raise ResourceLimitExceeded(
                f"mplex: {self._n_outbound} outbound streams open (max_streams)"
            )
        sid = self._next_id
        self._next_id += 1
        key = StreamKey(sid, True)
        self._streams[key] = _Stream(key)
        self._n_outbound += 1
        label = str(sid) if name is None else name
        return key, encode_frame(sid, Flag.NEW_STREAM, label.encode())

    def send_data_parts(self, key: StreamKey, data: Buffer) -> list[Buffer]:
        """Frames carrying ``data``, as header/payload pieces to write in order.

        ``data`` is split into messages of at most ``max_message_size`` bytes.  Up to
        :data:`JOIN_LIMIT` bytes (and one message) give one part, payload joined with
        its header (one write); anything larger gives (header, payload) pairs, the
        payloads memoryview slices of ``data`` (no copy: the caller copies mutable buffers
        before handing them to a transport that keeps references).
        """
        st = self._streams.get(key)
        if st is None:
            raise StreamClosed("mplex stream is closed or reset")
        if st.local_closed:
            raise StreamClosed("write after close_write() on mplex stream")
        n = len(data)
        if n == 0:
            return []
        prefix = st.msg_prefix
        limit = self.options.max_message_size
        if n <= limit and n <= JOIN_LIMIT:
            return [b"".join((prefix, _len_varint(n), data))]
        mv = memoryview(data).cast("B")
        parts: list[Buffer] = []
        for start in range(0, n, limit):
            piece = mv[start : start + limit]
            parts.append(prefix + _len_varint(len(piece)))
            parts.append(piece)
        return parts

    def send_data(self, key: StreamKey, data: Buffer) -> bytes:
        """Like :meth:`send_data_parts`, joined into one ``bytes``."""
        n = len(data)
        st = self._streams.get(key)
        if st is not None and not st.local_closed and 0 < n <= self.options.max_message_size:
            return b"".join((st.msg_prefix, _len_varint(n), data))  # the common case
        return b"".join(self.send_data_parts(key, data))

    def close_stream(self, key: StreamKey) -> bytes:
        """Half-close our side: the Close frame to send (``b""`` if nothing to send)."""
        st = self._streams.get(key)
        if st is None or st.local_closed:
            return b""
        st.local_closed = True
        frame = encode_frame(key.id, outgoing_flag(key, Flag.CLOSE_RECEIVER))
        if st.remote_closed:
            self._remove(key)
        return frame

    def reset_stream(self, key: StreamKey) -> bytes:
        """Reset the stream now: the Reset frame to send (``b""`` if it is already gone)."""
        if key not in self._streams:
            return b""
        self._remove(key)
        return encode_frame(key.id, outgoing_flag(key, Flag.RESET_RECEIVER))

    def release(self, key: StreamKey) -> None:
        """The application closed the stream both ways (our Close sent, its reads
        stopped): it leaves the table now rather than at the peer's Close, so a peer
        that never closes cannot hold our ``max_streams`` slots (js-libp2p lets go of
        the stream then too).  The peer's late frames are dropped as stragglers."""
        st = self._streams.get(key)
        if st is not None and st.local_closed:
            self._remove(key)

    def consumed(self, key: StreamKey, n: int) -> None:
        """The application read ``n`` bytes of ``key``: they no longer count as buffered."""
        st = self._streams.get(key)
        if st is not None:
            st.buffered = max(0, st.buffered - n)
            if st.buffered <= self.options.max_stream_buffer:
                self._congested.discard(key)

    def close(self) -> bytes:
        """Half-close every stream and refuse new ones: the frames to send."""
        self._closed = True
        return b"".join(self.close_stream(k) for k in list(self._streams))

    def data_to_send(self) -> bytes:
        """Frames the session produced on its own since the last call."""
        if not self._outbox:
            return b""
        out = b"".join(self._outbox)
        self._outbox.clear()
        self._replies = 0
        return out

    # -- receiving ---------------------------------------------------------------------

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
            self._streams[key] = _Stream(key)
            self._n_inbound += 1
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

    def _reset_slow(self, key: StreamKey, events: list[Event], reason: str) -> None:
        self._remove(key)
        self._outbox.append(encode_frame(key.id, outgoing_flag(key, Flag.RESET_RECEIVER)))
        self.replies_queued += 1
        events.append(
            StreamReset(key, by_remote=False, reason=f"{reason} (mplex has no flow control)")
        )

    def _remove(self, key: StreamKey) -> None:
        self._streams.pop(key).removed = True
        self._congested.discard(key)
        if key.opened_by_us:
            self._n_outbound -= 1
        else:
            self._n_inbound -= 1
