"""What a QUIC stream asks of its connection: credit, memory, sending, resetting, ending.

A base class of :class:`~p2pkit_quic.session.QuicSession`, kept apart so that each
module has one job: the session drives the connection (datagrams, timer, events,
close), this is the per-stream data path.

* **Credit**: a stream reports what the application consumed (:meth:`consumed`); the
  machine raises MAX_STREAM_DATA / MAX_DATA from that (``Libp2pQuicConnection.grant``).
* **Memory**: bytes buffered unread are reserved in the connection's memory scope
  (:class:`~p2pkit.reservation.BufferReservation`, as yamux does); a refusal resets
  the stream it was for (:class:`~p2pkit.errors.StreamResetByLimit`).
* **Out of order**: aioquic keeps a stream's bytes up to the highest offset received
  (the gaps zero-filled) until they can be delivered in order; those bytes are
  reserved in the same scope (:meth:`account_out_of_order`), and a refusal aborts the
  connection (no single stream is to blame for a connection's reordering).  A peer
  sending a few bytes at the far end of its windows would otherwise make a connection
  hold up to ``connection_window`` the node's memory limits do not see.
* **Send buffer**: what a writer may hand to aioquic now (:meth:`room`) is bounded
  three ways: its stream's bytes queued and not acknowledged stay under
  ``send_buffer``; its stream's bytes beyond the peer's credit for it (MAX_STREAM_DATA)
  under :data:`CREDIT_AHEAD`, so a stream whose reader is slow waits for its credit as
  a yamux stream waits for its window, and blocks no other stream; and the
  connection's bytes not yet sent and within their stream's credit (held back by the
  peer's connection credit or the congestion window) under
  ``connection_send_buffer``.  aioquic keeps every byte written until it is
  acknowledged, so without the last two a peer that opens streams, asks for data and
  never reads it (nor grants credit) made us hold ``send_buffer`` per stream: 256
  streams, 1 GiB.  Blocked writers are woken
  (:meth:`wake_writers`) after each datagram (acknowledgements, credit) and each
  transmit (bytes sent) once their stream is at half its ``send_buffer`` again and
  the other two bounds leave room.
* **Resets and ends**: our reset of a stream (RESET_STREAM and STOP_SENDING, held while
  the stream is beyond the peer's MAX_STREAMS), the peer's reset of a stream we never
  saw (our half is ended too, or it keeps one of the peer's slots), and a finished
  stream leaving the session's table (what a graceful ``close()`` waits for).
"""

from __future__ import annotations

import contextlib
import sys
from typing import TYPE_CHECKING

from p2pkit.errors import ConnectionClosed, ResourceLimitExceeded, StreamReset, StreamResetByLimit
from p2pkit.reservation import BufferReservation
from p2pkit_quic.lean import COMPACT_BELOW, OVERSIZED
from p2pkit_quic.stream import RESET_CODE

if TYPE_CHECKING:
    from p2pkit.abc import MemoryScope
    from p2pkit_quic.machine import Libp2pQuicConnection
    from p2pkit_quic.options import QuicOptions
    from p2pkit_quic.stream import QuicStream
    from p2pkit_quic.waiters import Waiters


CREDIT_AHEAD = 32 * 1024
"""Bytes a stream may queue beyond the peer's credit for it: enough that data is ready
when the peer's next MAX_STREAM_DATA arrives, small enough that parked streams cost
little (a peer's 256 streams: 8 MiB at most)."""


class StreamFlow:
    """See the module docstring (the session's constructor calls :meth:`_init_flow`)."""

    __slots__ = (
        "_blocked_writers",
        "_sending",
        "_sending_recount",
        "_wrote",
        "data_queued",
        "delivered",
        "memory",
        "out_of_order",
        "unsent_bound",
        # the session's, read here (one layout for both classes):
        "_close_error",
        "_closed",
        "_going_away",
        "_streams",
        "_streams_changed",
        "is_initiator",
        "options",
        "quic",
    )

    quic: Libp2pQuicConnection
    options: QuicOptions
    memory: BufferReservation
    _blocked_writers: set[QuicStream] | None
    """Writers waiting for room (None while there are none)."""
    _sending: set[int] | None
    """Stream ids handed data since their bytes not yet sent were last counted (None
    when there are none: an empty set takes 216 bytes)."""
    _sending_recount: int
    """Size of ``_sending`` beyond which ``send`` counts (and so prunes) it."""
    _wrote: bool
    """Stream data was handed to aioquic since the session's last housekeeping."""
    unsent_bound: int
    """At least the connection's stream bytes not yet sent (exact after
    :meth:`count_unsent`, then grown by every ``send``)."""
    data_queued: bool
    """Stream data was queued since the last transmit (set by ``send``)."""
    delivered: int
    """Stream bytes handed to streams while the current datagram was processed."""
    out_of_order: int
    """Bytes aioquic holds that are not delivered yet (reserved in ``memory``)."""
    _closed: bool
    _close_error: BaseException | None
    is_initiator: bool
    _streams: dict[int, QuicStream]
    _going_away: bool
    _streams_changed: Waiters

    def _init_flow(self) -> None:
        self._blocked_writers = None
        self._sending = None
        self._sending_recount = 1024
        self._wrote = False
        self.unsent_bound = 0
        self.data_queued = False
        # Received, unread bytes of every stream, reserved in the connection's memory
        # scope once the swarm hands it over (use_memory); flow control bounds them too.
        self.memory = BufferReservation(None)
        self.delivered = 0
        self.out_of_order = 0

    def schedule_transmit(self) -> None:
        raise NotImplementedError

    def tidy_soon(self) -> None:
        raise NotImplementedError

    def abort(self, exc: BaseException | None = None) -> None:
        raise NotImplementedError

    def account_out_of_order(self) -> None:
        """Reserve what aioquic buffers out of order, as it is now.

        Called by the session after a datagram whose stream bytes did not all arrive in
        order (aioquic's flow-control count grew by other than what was delivered), and,
        while some are held, after every datagram before its data is delivered;
        O(streams) then, nothing otherwise.
        """
        held = 0
        for qstream in self.quic._streams.values():
            held += len(qstream.receiver._buffer)
        delta = held - self.out_of_order
        if not delta:
            return
        self.out_of_order = held
        try:
            self.memory.add(delta)
        except ResourceLimitExceeded as refusal:
            self.abort(refusal)  # the reservation is closed with the connection

    def use_memory(self, scope: MemoryScope) -> None:
        """Reserve what the streams buffer in ``scope`` (the swarm's connection scope)."""
        held = self.memory.held
        self.memory = BufferReservation(scope)
        self.memory.held = held
        if held:
            with contextlib.suppress(ResourceLimitExceeded):
                self.memory.grow()  # refused: accounted from the next bytes on

    def hold(self, stream: QuicStream, n: int) -> bool:
        """``n`` more bytes buffered on ``stream``; False if the scope refused them (the
        stream is then reset, as yamux does)."""
        try:
            self.memory.add(n)
        except ResourceLimitExceeded as refusal:
            self.memory.held -= n
            error = StreamResetByLimit(f"stream reset: no memory for its data ({refusal})")
            # Without its traceback: that holds the frames of the datagram's
            # processing (its data), kept alive as long as the stream's error.
            error.__cause__ = refusal.with_traceback(None)
            self.reset_stream(stream)
            stream.fail(error)
            return False
        return True

    def release(self, n: int) -> None:
        self.memory.add(-n)

    def consumed(self, stream: QuicStream, n: int, stream_total: int) -> None:
        qstream = self.quic._streams.get(stream.stream_id)
        if self.quic.grant(qstream, n, stream_total) and not self._closed:
            self.schedule_transmit()

    def unsent(self, stream: QuicStream) -> int:
        """Bytes of ``stream`` queued in aioquic and not yet acknowledged."""
        qstream = self.quic._streams.get(stream.stream_id)
        if qstream is None:
            return 0
        sender = qstream.sender
        return sender._buffer_stop - sender._buffer_start

    def count_unsent(self) -> int:
        """The connection's stream bytes queued in aioquic, never sent yet and within the
        peer's credit for their stream (exact; O(streams handed data since the last
        count))."""
        sending = self._sending
        if sending is None:
            self.unsent_bound = 0
            return 0
        streams = self.quic._streams
        total = 0
        for sid in list(sending):
            qstream = streams.get(sid)
            if qstream is None:
                sending.discard(sid)
                continue
            sender = qstream.sender
            # Within the peer's credit for the stream: bytes beyond it are the stream's
            # own bound (CREDIT_AHEAD), so a stream whose reader is slow blocks no other.
            stop = min(sender._buffer_stop, qstream.max_stream_data_remote)
            pending = stop - max(sender.highest_offset, sender._buffer_start)
            if pending > 0:
                total += pending
            elif sender._buffer_stop == sender._buffer_start:
                sending.discard(sid)  # all acknowledged: nothing to count
        if not sending:
            self._sending = None  # (a set keeps the table it grew to)
        elif len(sending) < COMPACT_BELOW and sys.getsizeof(sending) > OVERSIZED:
            self._sending = set(sending)
        self.unsent_bound = total
        return total

    def room(self, stream: QuicStream, want: int) -> int:
        """Bytes (at most ``want``) ``stream``'s writer may hand to aioquic now (the
        module docstring's three bounds); 0 or less: wait.  The connection's bytes not
        yet sent are counted again only when their upper bound says ``want`` may not
        fit, so many small writes cost no count each."""
        qstream = self.quic._streams.get(stream.stream_id)
        if qstream is None:
            return want  # gone: ``send`` raises the right error
        sender = qstream.sender
        stop = sender._buffer_stop
        room = min(
            want,
            self.options.send_buffer - (stop - sender._buffer_start),
            qstream.max_stream_data_remote + CREDIT_AHEAD - stop,
        )
        cap = self.options.connection_send_buffer
        if room > 0 and self.unsent_bound + room > cap:
            room = min(room, cap - self.count_unsent())
        return room

    def wait_writable(self, stream: QuicStream) -> None:
        if self._blocked_writers is None:
            self._blocked_writers = set()
        self._blocked_writers.add(stream)

    def wake_writers(self) -> None:
        """Wake the blocked writers that have room again (see the module docstring)."""
        blocked = self._blocked_writers
        if not blocked:
            return
        low = self.options.send_buffer // 2
        cap = self.options.connection_send_buffer
        conn_room = cap - self.count_unsent() if self.unsent_bound >= cap // 2 else cap
        if conn_room < cap // 2:
            return  # the connection cannot send: nobody would get far
        streams = self.quic._streams
        for stream in list(blocked):
            qstream = streams.get(stream.stream_id)
            if qstream is not None and not stream.done:
                sender = qstream.sender
                stop = sender._buffer_stop
                if stop - sender._buffer_start > low:
                    continue
                if qstream.max_stream_data_remote + CREDIT_AHEAD - stop <= 0:
                    continue
            blocked.discard(stream)
            stream.wake_writer()
        if not blocked and self._blocked_writers is blocked:
            self._blocked_writers = None

    def send(self, stream: QuicStream, data: bytes, *, end_stream: bool) -> None:
        if self._closed:
            raise self._close_error or ConnectionClosed("connection closed")
        try:
            self.quic.send_stream_data(stream.stream_id, data, end_stream=end_stream)
        except (RuntimeError, ValueError, AssertionError) as exc:  # aioquic refused
            raise StreamReset(f"stream {stream.stream_id} cannot send: {exc}") from exc
        if data:
            self.unsent_bound += len(data)
            self._wrote = True
            sending = self._sending
            if sending is None:
                sending = self._sending = set()
            sending.add(stream.stream_id)
            if len(sending) > self._sending_recount:
                # Many short streams, each sending little: count (which forgets those
                # aioquic has finished) before the set grows with every stream ever
                # opened.  Twice the survivors next time: amortized O(1) per send.
                self.count_unsent()
                self._sending_recount = max(1024, 2 * len(sending))
        self.data_queued = True
        self.schedule_transmit()

    def reset_stream(self, stream: QuicStream) -> None:
        if self._closed or self.quic.reset_unopened(stream.stream_id):
            return  # (a stream never on the wire is reset once the peer allows it)
        with contextlib.suppress(Exception):  # a direction already finished: nothing to reset
            if not stream._write_closed or self.unsent(stream):
                self.quic.reset_stream(stream.stream_id, RESET_CODE)
        with contextlib.suppress(Exception):
            if not stream._eof:
                self.quic.stop_stream(stream.stream_id, RESET_CODE)
        self.schedule_transmit()

    def _reset_unseen(self, sid: int) -> None:
        """The peer reset a stream of its own before any of its data reached us (go's
        CancelWrite on a new stream): no QuicStream was made for it, but aioquic keeps
        it, one of the peer's MAX_STREAMS slots, until our half ends too.  End it."""
        qs = self.quic._streams.get(sid)
        if qs is None or sid & 2 or bool(sid & 1) != self.is_initiator:
            return  # gone already, unidirectional, or ours (then we made a QuicStream)
        with contextlib.suppress(Exception):  # (aioquic resets a sender only once)
            self.quic.reset_stream(sid, RESET_CODE)
        with contextlib.suppress(Exception):
            if not qs.receiver.is_finished:
                self.quic.stop_stream(sid, RESET_CODE)
        self.schedule_transmit()

    # -- a stream's end ------------------------------------------------------------------------

    def stream_maybe_done(self, stream: QuicStream) -> None:
        if stream.done and self._streams.get(stream.stream_id) is stream:
            del self._streams[stream.stream_id]
            if self._blocked_writers is not None:
                self._blocked_writers.discard(stream)
            if not self._streams:
                self.tidy_soon()  # quiet now: shrink what the streams grew (timers.py)
        if self._going_away:
            self._streams_changed.wake()  # close() looks again at what is left

    def _holding_close(self) -> bool:
        """Streams a graceful close waits for: not those we closed both ways, which only
        wait for the peer's FIN (its data discarded; yamux lets them go at GoAway)."""
        return any(not s.closed_both_ways for s in self._streams.values())
