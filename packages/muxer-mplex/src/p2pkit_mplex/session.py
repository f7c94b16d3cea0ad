"""The mplex protocol as a pure state machine (sans-IO): bytes in, events and bytes out.

No sockets, no asyncio, no clocks.  The asyncio shell (:mod:`p2pkit_mplex.shell`) feeds
received bytes to :meth:`MplexSession.receive_data`, turns the returned events into
stream operations, sends what the ``open``/``send``/``close``/``reset`` methods return,
and after every ``receive_data`` sends :meth:`MplexSession.data_to_send` (frames the
session produced by itself: resets of overflowing or refused streams).

Parsing and checking what the peer sends is the session's base class
:class:`~p2pkit_mplex.parser.MplexParser` (:mod:`p2pkit_mplex.parser`: each payload is
copied once, into its event); the events are in :mod:`p2pkit_mplex.events`, the errors
in :mod:`p2pkit_mplex.errors` (both also importable from here).  This module keeps the
stream table and frames what we send.
"""

from __future__ import annotations

from p2pkit.abc import Buffer
from p2pkit.errors import ConnectionClosed, ResourceLimitExceeded, StreamClosed
from p2pkit.tables import SHRINK_BELOW, shrink
from p2pkit.varint import encode_uvarint
from p2pkit_mplex.errors import MplexControlFlood, MplexFrameTooLarge, MplexProtocolError
from p2pkit_mplex.events import DataReceived, Event, StreamEnded, StreamOpened, StreamReset
from p2pkit_mplex.frames import Flag, StreamKey, encode_frame, outgoing_flag
from p2pkit_mplex.options import MplexOptions
from p2pkit_mplex.parser import MAX_NAME, MAX_QUEUED_REPLIES, MplexParser

__all__ = [
    "JOIN_LIMIT",
    "MAX_NAME",
    "MAX_QUEUED_REPLIES",
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


def _len_varint(n: int) -> bytes:
    return _ONE_BYTE[n] if n < 128 else encode_uvarint(n)


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


class MplexSession(MplexParser):
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
        self._init_parser()

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

    # -- the stream table (also the parser's) ------------------------------------------

    def _open_inbound(self, key: StreamKey) -> None:
        """The peer's NewStream was accepted by the parser: the stream enters the table."""
        self._streams[key] = _Stream(key)
        self._n_inbound += 1

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
        if len(self._streams) < SHRINK_BELOW:
            shrink(self._streams)  # the tables a burst grew (p2pkit.tables)
            shrink(self._congested)  # (some of these streams)
        if key.opened_by_us:
            self._n_outbound -= 1
        else:
            self._n_inbound -= 1
