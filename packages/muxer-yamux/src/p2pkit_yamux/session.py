"""The yamux protocol as a pure state machine (sans-IO): bytes in -> events, calls -> bytes out.

No sockets, no asyncio, no clock: the caller passes the time (a float, any unit, as
long as it is consistent) where it matters (RTT, window auto-tuning).  The asyncio
shell in :mod:`p2pkit_yamux.shell` drives it; tests drive it directly.

Frames the session must send on its own while parsing (ping answers, RST for SYNs it
refuses, GoAway(1) on a protocol error) are queued; fetch them with
:meth:`YamuxSession.data_to_send` after each :meth:`YamuxSession.receive_data`.  A
protocol error of the peer raises :class:`~p2pkit_yamux.errors.YamuxProtocolError`
from ``receive_data`` (GoAway(1) already queued); the session is dead afterwards.
The conventions shared with the other sans-IO machines are in ``docs/sansio.md``.

Parsing and checking what the peer sends is the session's base class
:class:`~p2pkit_yamux.parser.YamuxParser` (:mod:`p2pkit_yamux.parser`, which also lists
what we tolerate from real peers and what ends the session); this module keeps the books
(per-stream state, counters, windows) and frames what we send.
"""

from __future__ import annotations

import secrets

from p2pkit.abc import Buffer
from p2pkit.errors import ConnectionClosed, ResourceLimitExceeded, StreamClosed
from p2pkit.tables import SHRINK_BELOW, shrink
from p2pkit_yamux import frames as fr
from p2pkit_yamux.errors import YamuxGoAway, YamuxProtocolError
from p2pkit_yamux.events import ConnectionTerminated
from p2pkit_yamux.flow import ReceiveWindow, WindowBudget
from p2pkit_yamux.options import INITIAL_WINDOW, YamuxOptions
from p2pkit_yamux.parser import MAX_QUEUED_REPLIES, YamuxParser

__all__ = [
    "COALESCE_LIMIT",
    "MAX_OUTSTANDING_PINGS",
    "MAX_QUEUED_REPLIES",
    "StreamState",
    "YamuxSession",
]

_pack = fr.HEADER.pack

#: Payloads up to this size are copied behind their header (one write).  Larger ones are
#: sent as (header + their first COALESCE_LIMIT bytes, copied) + a zero-copy view of the
#: rest: never a 12-byte header on its own, which with TCP_NODELAY would cost a packet,
#: a send() and a recv() of its own.
COALESCE_LIMIT = 16 * 1024

#: Pings awaiting their ACK that we remember (older ones are forgotten, their ACK ignored).
MAX_OUTSTANDING_PINGS = 16


class StreamState:
    """What the session knows about one live stream."""

    __slots__ = (
        "accepted",
        "acked",
        "local_fin",
        "outbound",
        "recv",
        "remote_fin",
        "send_window",
        "stream_id",
    )

    def __init__(self, stream_id: int, outbound: bool, recv: ReceiveWindow) -> None:
        self.stream_id = stream_id
        self.outbound = outbound
        self.send_window = INITIAL_WINDOW
        self.recv = recv
        self.local_fin = False
        self.remote_fin = False
        self.acked = not outbound  # outbound: until the peer's ACK
        self.accepted = outbound  # inbound: until the application accepts it


class YamuxSession(YamuxParser):
    """One side of a yamux session.

    ``is_initiator``: the side that dialed (odd stream ids); the listener uses even ids.
    :meth:`receive_data` is :class:`~p2pkit_yamux.parser.YamuxParser`'s.
    """

    def __init__(self, *, is_initiator: bool, options: YamuxOptions | None = None) -> None:
        self.is_initiator = is_initiator
        self.options = opts = options or YamuxOptions()
        self.streams: dict[int, StreamState] = {}
        self.rtt: float | None = None
        """Latest round-trip time measured with a ping (caller's time unit)."""
        self.goaway_sent: int | None = None
        self.goaway_received: int | None = None
        self.terminated: ConnectionTerminated | None = None
        """Set when the session is over: GoAway with an error code (either way) or a
        protocol error of the peer (then :attr:`error` is set too)."""
        self.error: YamuxProtocolError | None = None
        """The protocol error :meth:`receive_data` raised, if any (raised again by
        every later call)."""
        self._next_id = 1 if is_initiator else 2
        self._remote_parity = 0 if is_initiator else 1
        self._outbox: list[bytes] = []
        self._replies = 0  # frames in _outbox (bounded by MAX_QUEUED_REPLIES)
        self._budget = WindowBudget(opts.max_session_receive_buffer)
        self._extra_window = opts.initial_window - INITIAL_WINDOW
        self._inbound_pending = 0  # inbound SYNs not yet accepted by the application
        self._inbound_open = 0
        self._unacked = 0  # outbound SYNs not yet ACKed
        self._peer_acked = False  # has the peer ACKed any of our streams yet?
        self._pings: dict[int, float] = {}
        self.answer_pings = True
        """False: Ping(SYN) frames are counted in :attr:`dropped_pings`, not answered.
        The shell clears it while the peer does not read what we send (go-yamux drops
        a ping reply when its send queue is full), so a ping flood cannot grow our
        output queue."""
        self.dropped_pings = 0
        self._init_parser()

    # -- introspection -----------------------------------------------------------------

    @property
    def unacked_outbound(self) -> int:
        """Our SYNs the peer has not ACKed yet."""
        return self._unacked

    @property
    def unacked_limit(self) -> int:
        """How many of our SYNs may wait for an ACK now: ``early_outbound_unacked``
        until the peer's first ACK, then ``max_outbound_unacked``."""
        opts = self.options
        if self._peer_acked:
            return opts.max_outbound_unacked
        return min(opts.early_outbound_unacked, opts.max_outbound_unacked)

    @property
    def can_open(self) -> bool:
        """True when :meth:`open_stream` would succeed now."""
        return (
            self.terminated is None
            and self.goaway_sent is None
            and self.goaway_received is None
            and self._unacked < self.unacked_limit
            and self._next_id <= fr.MAX_U32
        )

    @property
    def ids_exhausted(self) -> bool:
        """Every stream id of ours has been used (2**31 opens): no stream can ever be
        opened again on this session (go-yamux: ``ErrStreamsExhausted``)."""
        return self._next_id > fr.MAX_U32

    def send_window(self, stream_id: int) -> int:
        """Bytes we may send on the stream now (0 if it is not open for writing)."""
        st = self.streams.get(stream_id)
        if st is None or st.local_fin:
            return 0
        return st.send_window

    def receive_window(self, stream_id: int) -> int:
        """The current maximum receive window of the stream (grows with auto-tuning)."""
        st = self.streams.get(stream_id)
        return st.recv.maximum if st is not None else 0

    def data_to_send(self) -> bytes:
        """Frames the session queued on its own (ping answers, refusals, GoAway)."""
        if not self._outbox:
            return b""
        out = b"".join(self._outbox)
        self._outbox.clear()
        self._replies = 0
        return out

    # -- sending ---------------------------------------------------------------------

    def open_stream(self, now: float | None = None) -> tuple[int, bytes]:
        """Open an outbound stream: returns its id and the WINDOW_UPDATE|SYN frame."""
        if self.terminated is not None:
            raise ConnectionClosed("yamux session is closed")
        if self.goaway_sent is not None or self.goaway_received is not None:
            raise ConnectionClosed("yamux session is going away: no new streams")
        limit = self.unacked_limit
        if self._unacked >= limit:
            raise ResourceLimitExceeded(
                f"{self._unacked} yamux streams wait for the peer's ACK (limit {limit})"
            )
        sid = self._next_id
        if sid > fr.MAX_U32:
            raise ResourceLimitExceeded("yamux stream ids exhausted")
        self._next_id = sid + 2
        st = StreamState(sid, True, self._new_window(now))
        st.recv.grow_base(self._extra_window)
        self.streams[sid] = st
        self._unacked += 1
        return sid, _pack(0, fr.TYPE_WINDOW_UPDATE, fr.FLAG_SYN, sid, self._extra_window)

    def accept(self, stream_id: int) -> bytes:
        """The application took the inbound stream: the ACK frame (exactly once per stream)."""
        st = self.streams.get(stream_id)
        if st is None or st.accepted:
            return b""
        st.accepted = True
        self._inbound_pending -= 1
        st.recv.grow_base(self._extra_window)
        return _pack(0, fr.TYPE_WINDOW_UPDATE, fr.FLAG_ACK, stream_id, self._extra_window)

    def send_data(self, stream_id: int, data: Buffer) -> tuple[int, list[Buffer]]:
        """Frame as much of ``data`` as the peer's window allows.

        Returns ``(bytes taken, buffers to write in order)``.  Small payloads are copied
        behind their header; large ones are returned as header + first bytes (copied)
        and a view of the rest of ``data`` (so ``data`` must not change until written:
        pass ``bytes``).
        """
        st = self.streams.get(stream_id)
        if st is None or st.local_fin:
            raise StreamClosed(f"yamux stream {stream_id} is not open for writing")
        total = min(len(data), st.send_window)
        if total <= 0:
            return 0, []
        st.send_window -= total
        view = memoryview(data)
        limit = self.options.max_frame_size
        out: list[Buffer] = []
        pos = 0
        while pos < total:
            size = min(limit, total - pos)
            hdr = _pack(0, fr.TYPE_DATA, 0, stream_id, size)
            if size <= COALESCE_LIMIT:
                out.append(hdr + view[pos : pos + size])
            else:
                head = pos + COALESCE_LIMIT
                out.append(hdr + view[pos:head])
                out.append(view[head : pos + size])
            pos += size
        return total, out

    def close_stream(self, stream_id: int) -> bytes:
        """Half-close: WINDOW_UPDATE|FIN (idempotent; b"" if nothing to send)."""
        st = self.streams.get(stream_id)
        if st is None or st.local_fin:
            return b""
        st.local_fin = True
        if st.remote_fin:
            self._remove(st)
        return _pack(0, fr.TYPE_WINDOW_UPDATE, fr.FLAG_FIN, stream_id, 0)

    def reset_stream(self, stream_id: int) -> bytes:
        """Abort the stream: WINDOW_UPDATE|RST (b"" if it is already gone)."""
        st = self.streams.get(stream_id)
        if st is None:
            return b""
        self._remove(st)
        return _pack(0, fr.TYPE_WINDOW_UPDATE, fr.FLAG_RST, stream_id, 0)

    def consumed(self, stream_id: int, n: int, now: float) -> bytes:
        """The application consumed ``n`` bytes: a window update when one is due."""
        st = self.streams.get(stream_id)
        if st is None or st.remote_fin:
            return b""
        rtt = self.rtt
        if rtt is not None:
            # An idle-time ping on loopback measures microseconds; under load a window
            # round trip takes the event-loop delay of both ends.  The floor keeps
            # auto-tuning from judging fast local paths "slow" (see options).
            rtt = max(rtt, self.options.autotune_rtt_floor)
        delta = st.recv.consumed(n, now, rtt)
        if not delta:
            return b""
        return _pack(0, fr.TYPE_WINDOW_UPDATE, 0, stream_id, delta)

    def ping(self, now: float, value: int | None = None) -> tuple[int, bytes]:
        """A PING|SYN frame; its ACK yields :class:`PongReceived` with the RTT.

        The default value is random (32 bits, not one of the outstanding ones): a peer
        that does not read our pings cannot ACK them blindly to keep the session alive.
        """
        pings = self._pings
        if value is None:
            value = secrets.randbits(32)
            while value in pings:
                value = secrets.randbits(32)
        if len(pings) >= MAX_OUTSTANDING_PINGS:  # a peer that never answers: forget the oldest
            del pings[next(iter(pings))]
        pings[value] = now
        return value, fr.ping(value, fr.FLAG_SYN)

    def go_away(self, code: int = fr.GO_AWAY_NORMAL) -> bytes:
        """GoAway: code 0 stops new streams both ways; other codes end the session."""
        if self.goaway_sent is not None:
            return b""
        self.goaway_sent = code
        if code != fr.GO_AWAY_NORMAL and self.terminated is None:
            self.terminated = ConnectionTerminated("local-goaway", YamuxGoAway(code))
        return fr.go_away(code)

    # -- bookkeeping -----------------------------------------------------------------

    def _new_window(self, now: float | None) -> ReceiveWindow:
        win = ReceiveWindow(INITIAL_WINDOW, self.options.max_stream_window, self._budget)
        win.last_update = now
        return win

    def _open_inbound(self, sid: int, now: float | None) -> StreamState:
        """The peer's SYN was accepted by the parser: the stream's state, counted."""
        st = StreamState(sid, False, self._new_window(now))
        self.streams[sid] = st
        self._inbound_pending += 1
        self._inbound_open += 1
        return st

    def _remove(self, st: StreamState) -> None:
        if self.streams.pop(st.stream_id, None) is None:
            return
        if len(self.streams) < SHRINK_BELOW:
            shrink(self.streams)  # the table a burst grew (p2pkit.tables)
        st.recv.release()
        if st.outbound:
            if not st.acked:
                st.acked = True
                self._unacked -= 1
        else:
            self._inbound_open -= 1
            if not st.accepted:
                st.accepted = True
                self._inbound_pending -= 1
