"""What a QUIC stream asks of its connection: credit, memory, sending, resetting.

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
* **Send buffer**: a writer waits while its stream has ``send_buffer`` bytes queued in
  aioquic and not acknowledged (:meth:`unsent`), and is woken at half of that as
  acknowledgements arrive (:meth:`wake_writers`, called by the session after each
  datagram).
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from p2pkit.errors import ConnectionClosed, ResourceLimitExceeded, StreamReset, StreamResetByLimit
from p2pkit.reservation import BufferReservation
from p2pkit_quic.stream import RESET_CODE

if TYPE_CHECKING:
    from p2pkit.abc import MemoryScope
    from p2pkit_quic.machine import Libp2pQuicConnection
    from p2pkit_quic.options import QuicOptions
    from p2pkit_quic.stream import QuicStream


class StreamFlow:
    """See the module docstring (state is set by the session's constructor)."""

    quic: Libp2pQuicConnection
    options: QuicOptions
    memory: BufferReservation
    _blocked_writers: set[QuicStream]
    data_queued: bool
    delivered: int
    """Stream bytes handed to streams while the current datagram was processed."""
    out_of_order: int
    """Bytes aioquic holds that are not delivered yet (reserved in ``memory``)."""
    _closed: bool
    _close_error: BaseException | None

    def schedule_transmit(self) -> None:
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
        memory = self.memory
        memory.held += delta
        if memory.held > memory.reserved:
            try:
                memory.grow()
            except ResourceLimitExceeded as refusal:
                self.abort(refusal)  # the reservation is closed with the connection
        elif memory.held < memory.release_below:
            memory.shrink()

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
        memory = self.memory
        memory.held += n
        if memory.held > memory.reserved:
            try:
                memory.grow()
            except ResourceLimitExceeded as refusal:
                memory.held -= n
                error = StreamResetByLimit(f"stream reset: no memory for its data ({refusal})")
                # Without its traceback: that holds the frames of the datagram's
                # processing (its data), kept alive as long as the stream's error.
                error.__cause__ = refusal.with_traceback(None)
                self.reset_stream(stream)
                stream.fail(error)
                return False
        return True

    def release(self, n: int) -> None:
        memory = self.memory
        memory.held -= n
        if memory.held < memory.release_below:
            memory.shrink()

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

    def wait_writable(self, stream: QuicStream) -> None:
        self._blocked_writers.add(stream)

    def wake_writers(self) -> None:
        low = self.options.send_buffer // 2
        for stream in list(self._blocked_writers):
            if stream.done or self.unsent(stream) <= low:
                self._blocked_writers.discard(stream)
                stream.wake_writer()

    def send(self, stream: QuicStream, data: bytes, *, end_stream: bool) -> None:
        if self._closed:
            raise self._close_error or ConnectionClosed("connection closed")
        try:
            self.quic.send_stream_data(stream.stream_id, data, end_stream=end_stream)
        except (RuntimeError, ValueError, AssertionError) as exc:  # aioquic refused
            raise StreamReset(f"stream {stream.stream_id} cannot send: {exc}") from exc
        self.data_queued = True
        self.schedule_transmit()

    def reset_stream(self, stream: QuicStream) -> None:
        if self._closed:
            return
        with contextlib.suppress(Exception):  # a direction already finished: nothing to reset
            if not stream._write_closed or self.unsent(stream):
                self.quic.reset_stream(stream.stream_id, RESET_CODE)
        with contextlib.suppress(Exception):
            if not stream._eof:
                self.quic.stop_stream(stream.stream_id, RESET_CODE)
        self.schedule_transmit()
