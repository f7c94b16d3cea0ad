"""One QUIC connection as a :class:`~p2pkit.abc.MuxedConnection`: the asyncio shell.

Drives the sans-IO machine (:class:`~p2pkit_quic.machine.Libp2pQuicConnection`) from
three sources, as aioquic intends: datagrams (:meth:`QuicSession.datagram_received`,
called by the endpoint that owns the UDP socket), the machine's timer (one
``call_at`` handle, moved only when the deadline changes: :mod:`p2pkit_quic.timers`)
and the application (stream
reads, writes, resets).  Sending is batched: every source only marks the session
dirty, and one ``call_soon`` callback per loop iteration turns everything queued into
datagrams, so a burst of received packets or of small writes costs one pass.

Closing: ``close`` refuses new streams, waits for the open ones to finish, then sends
CONNECTION_CLOSE (NO_ERROR); ``abort`` sends CONNECTION_CLOSE with an error code now.
Either way, and when the peer closes or the idle timeout fires, every stream still open
fails with ConnectionClosed and the endpoint forgets the connection's ids.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from aioquic import tls
from aioquic.quic import events
from aioquic.quic.connection import QuicConnectionState

from p2pkit.abc import MuxedConnection, MuxedStream
from p2pkit.bufpool import connections as connection_tally
from p2pkit.errors import ConnectionClosed, StreamReset
from p2pkit.logs import get_logger
from p2pkit_quic.stream import QuicStream
from p2pkit_quic.timers import SessionTimer
from p2pkit_quic.waiters import Waiters

if TYPE_CHECKING:
    from p2pkit_quic.endpoint import Endpoint
    from p2pkit_quic.machine import Libp2pQuicConnection
    from p2pkit_quic.options import QuicOptions

log = get_logger("quic")

_ENDING = frozenset(
    {QuicConnectionState.CLOSING, QuicConnectionState.DRAINING, QuicConnectionState.TERMINATED}
)
NO_ERROR = 0
ERROR_CODE = 0x1  # application error: the connection was aborted
ACCEPT_BACKLOG = 1024
"""Inbound streams queued for accept_stream at most; beyond, new ones are reset."""


class QuicSession(SessionTimer, MuxedConnection):
    """See the module docstring.  Built by the endpoint, never by applications."""

    # Slots, not an instance dict: with ~40 attributes the dict was a 1.6 KB table.
    __slots__ = (
        "_accept_waiters",
        "_ack_waiter",
        "_cids",
        "_close_waiters",
        "_flush_now",
        "_grow_datagrams",
        "_incoming",
        "_loop",
        "_transmit_scheduled",
        "endpoint",
        "handshake",
        "remote",
        "unreachable",
    )

    def __init__(
        self,
        endpoint: Endpoint,
        quic: Libp2pQuicConnection,
        remote: Any,
        options: QuicOptions,
        *,
        is_initiator: bool,
    ) -> None:
        self.endpoint = endpoint
        self.quic = quic
        self.remote = remote
        self.options = options
        self.is_initiator = is_initiator
        self._loop = asyncio.get_running_loop()
        self._streams: dict[int, QuicStream] = {}
        self._incoming: list[QuicStream] = []  # (at most ACCEPT_BACKLOG)
        self._accept_waiters = Waiters()  # any number of accept_stream callers
        self._init_flow()
        self._cids: set[bytes] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._tidy_at: float | None = None
        self._transmit_scheduled = False
        self._going_away = False
        self._closed = False
        self._close_error: BaseException | None = None
        self._close_waiters = Waiters()  # wait_closed
        self._streams_changed = Waiters()  # close() waiting for the streams to finish
        self.handshake: asyncio.Future[None] = self._loop.create_future()
        self.unreachable = False  # ICMP "port unreachable" ended our handshake (endpoint.py)
        self._last_activity = self._loop.time()
        self._grow_datagrams = bool(options.loopback_datagram_size) and _is_loopback(remote)
        self._flush_now = False
        self._ack_waiter: asyncio.Future[None] | None = None
        connection_tally.opened()  # a burst of closes trims the heap (p2pkit.bufpool)

    # -- the endpoint's side ------------------------------------------------------------------

    def add_cid(self, cid: bytes) -> None:
        self._cids.add(cid)
        self.endpoint.register(cid, self)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        quic = self.quic
        if self._closed or quic._close_pending:
            # Closing (ours, or aioquic's on a protocol error) until the close goes out
            # at the next transmit: the rest of a received batch would only be parsed
            # again, each raising (and logging) the same error.
            return
        now = self._loop.time()
        self._last_activity = now
        used = quic._local_max_data.used  # stream bytes received, in order or not
        self.delivered = 0
        quic.receive_datagram(data, addr, now)
        if self.out_of_order:
            # Bytes held out of order may have just been delivered: release them before
            # the streams reserve them again as unread (no double count at a limit).
            self.account_out_of_order()
        self._process_events()
        if quic._local_max_data.used - used != self.delivered:
            self.account_out_of_order()  # (flow.py) not taken while data comes in order
        self._check_ended()
        if self._grow_datagrams and self.quic._handshake_confirmed:
            # Only once the handshake is confirmed: until then packets carrying Initial
            # data are padded to the full datagram size.
            self._grow_datagrams = False
            self.quic.set_datagram_size(self.options.loopback_datagram_size)
        if self._blocked_writers:
            self.wake_writers()
        if self._ack_waiter is not None and not self._ack_waiter.done():
            self._ack_waiter.set_result(None)
        if self._flush_now:
            # The client's handshake just completed: its Finished leaves before the
            # dial returns (an application that aborts at once must not lose it).
            self._flush_now = False
            self._transmit()
        else:
            self.schedule_transmit()

    def schedule_transmit(self) -> None:
        if not self._transmit_scheduled:
            self._transmit_scheduled = True
            self._loop.call_soon(self._transmit)

    def _transmit(self) -> None:
        self._transmit_scheduled = False
        if self.quic._state == QuicConnectionState.TERMINATED and self._closed:
            return
        now = self._loop.time()
        if self.data_queued:
            # Stream data goes out now: a pending ACK rides along in the same packet
            # instead of leaving alone when aioquic's 1 ms ACK delay ends (one packet
            # built and parsed less per request and per response).
            self.data_queued = False
            space = self.quic._spaces.get(tls.Epoch.ONE_RTT)
            if space is not None and space.ack_at is not None:
                space.ack_at = now
        datagrams = self.quic.datagrams_to_send(now)
        if datagrams:
            self.endpoint.send_many(datagrams)
            if self._blocked_writers:
                self.wake_writers()  # bytes went out: the connection may have room again
        self._process_events()
        self._check_ended()  # a close (ours, or aioquic's on a protocol error) went out
        self._set_timer()

    # -- events ---------------------------------------------------------------------------------

    def _process_events(self) -> None:
        quic = self.quic
        while batch := quic.take_events():  # (events queued meanwhile: the next batch)
            for event in batch:
                self._on_event(event)

    def _on_event(self, event: events.QuicEvent) -> None:
        if isinstance(event, events.StreamDataReceived):
            self._on_stream_data(event)
        elif isinstance(event, events.StreamReset | events.StopSendingReceived):
            stream = self._streams.get(event.stream_id)
            if stream is None:
                self._reset_unseen(event.stream_id)
            elif not stream.done:
                # Either half reset by the peer ends the whole stream, as a reset does
                # on yamux; the other half is reset here so aioquic can discard the
                # stream's state.
                self.reset_stream(stream)
                what = "RESET_STREAM" if isinstance(event, events.StreamReset) else "STOP_SENDING"
                stream.fail(StreamReset(f"stream reset by peer ({what} {event.error_code})"))
        elif isinstance(event, events.ConnectionIdIssued):
            self.add_cid(event.connection_id)
        elif isinstance(event, events.ConnectionIdRetired):
            self._cids.discard(event.connection_id)
            self.endpoint.unregister(event.connection_id, self)
        elif isinstance(event, events.HandshakeCompleted):
            self._on_handshake_completed()
        elif isinstance(event, events.ConnectionTerminated):
            self._on_terminated(event)

    def _on_handshake_completed(self) -> None:
        quic = self.quic
        if quic.remote_public_key is None:
            # The client sent no certificate: libp2p requires one (the TLS layer let
            # the handshake finish, as RFC 8446 allows).  The code is the TLS alert
            # certificate_required (116) as a QUIC CRYPTO_ERROR, what js-libp2p's
            # listener sends in the same case (docs/interop.md).
            quic.close(error_code=0x100 + 116, reason_phrase="client certificate required")
            self.schedule_transmit()
            return
        quic.release_handshake_state()
        if not self.handshake.done():
            self._flush_now = self.is_initiator
            self.handshake.set_result(None)

    def _on_stream_data(self, event: events.StreamDataReceived) -> None:
        self.delivered += len(event.data)
        sid = event.stream_id
        stream = self._streams.get(sid)
        if stream is None:
            if sid & 2 or bool(sid & 1) != self.is_initiator or self._closed:
                return  # unidirectional (refused by MAX_STREAMS 0) or a stale id
            stream = QuicStream(self, sid, is_initiator=False)
            self._streams[sid] = stream
            if self._going_away or len(self._incoming) >= ACCEPT_BACKLOG:
                stream.on_data(event.data, event.end_stream)
                stream.reset()
                return
            self._incoming.append(stream)
            self._accept_waiters.wake()
        stream.on_data(event.data, event.end_stream)

    def _check_ended(self) -> None:
        # aioquic reports ConnectionTerminated only when its draining period ends (three
        # PTOs later); the connection is unusable from the moment CONNECTION_CLOSE was
        # received or sent, so the session ends at once.
        close = self.quic._close_event
        if close is not None and not self._closed and self.quic._state in _ENDING:
            self._on_terminated(close)

    def _on_terminated(self, event: events.ConnectionTerminated) -> None:
        if event.error_code == NO_ERROR:
            reason = "connection closed by peer" if not self._going_away else "connection closed"
        else:
            reason = (
                f"connection closed: error 0x{event.error_code:x}"
                f"{': ' + event.reason_phrase if event.reason_phrase else ''}"
            )
        self._end(ConnectionClosed(reason))

    # -- MuxedConnection ------------------------------------------------------------------------

    async def open_stream(self) -> MuxedStream:
        if self._closed or self._going_away:
            raise self._close_error or ConnectionClosed("connection closed")
        sid = self.quic.get_next_available_stream_id()
        # An empty send allocates the id in aioquic (the next call gets the next id);
        # nothing goes on the wire until the first write (QUIC opens streams implicitly).
        # Beyond the peer's MAX_STREAMS, aioquic holds the stream's data until it may.
        self.quic.send_stream_data(sid, b"")
        stream = QuicStream(self, sid, is_initiator=True)
        self._streams[sid] = stream
        return stream

    async def accept_stream(self) -> MuxedStream:
        while True:
            if self._incoming and not self._closed:
                return self._incoming.pop(0)
            if self._closed or self._going_away:
                raise self._close_error or ConnectionClosed("connection closed")
            await self._accept_waiters.wait()

    async def close(self) -> None:
        if self._closed:
            return
        if self._going_away:
            # A close is running (the application's and the swarm's may overlap): wait
            # for it.  A second waiter in the loop below would replace the first one's
            # acknowledgement future, leaving that caller to wait for close_timeout.
            await self.wait_closed()
            return
        self._going_away = True
        self._accept_waiters.wake()
        for stream in list(self._incoming):
            stream.reset()
        self._incoming.clear()
        limit = self.options.close_timeout
        try:
            async with asyncio.timeout(limit):  # as yamux's close: bounded
                while not self._closed and self._holding_close():
                    await self._streams_changed.wait()  # woken by stream changes and by _end
                # What we sent must be acknowledged first: CONNECTION_CLOSE would
                # otherwise overtake a retransmission, and the peer lose a stream's tail.
                while not self._closed and not self._all_acknowledged():
                    self._ack_waiter = self._loop.create_future()
                    try:
                        await self._ack_waiter
                    finally:
                        self._ack_waiter = None
        except TimeoutError:
            self.abort(TimeoutError(f"streams still open {limit} s after close()"))
            return
        except asyncio.CancelledError:
            # The caller gave up waiting: end now rather than never (no later close()
            # would finish this one; new streams are refused already).
            self.abort(ConnectionClosed("close() cancelled"))
            raise
        if not self._closed:
            self.quic.close(error_code=NO_ERROR)
            self._transmit()
            self._end(ConnectionClosed("connection closed"))

    def _all_acknowledged(self) -> bool:
        return all(qs.sender.is_finished for qs in self.quic._streams.values())

    def abort(self, exc: BaseException | None = None) -> None:
        if self._closed:
            return
        with contextlib.suppress(Exception):
            self.quic.close(error_code=ERROR_CODE, reason_phrase=str(exc or "aborted")[:100])
            self._transmit()
        self._end(ConnectionClosed(f"connection aborted: {exc}" if exc else "connection aborted"))

    def _end(self, error: BaseException) -> None:
        if self._closed:
            return
        self._closed = self._going_away = True
        self._close_error = error
        if not self.handshake.done():
            self.handshake.set_exception(error)
            self.handshake.exception()  # retrieved: a failed dial raises its own error
        for stream in list(self._streams.values()):
            stream.connection_ended(ConnectionClosed(str(error)))
        self._streams.clear()
        self._incoming.clear()
        self._accept_waiters.wake()
        blocked, self._blocked_writers = self._blocked_writers, None
        for stream in blocked or ():
            stream.wake_writer()
        if self._ack_waiter is not None and not self._ack_waiter.done():
            self._ack_waiter.set_result(None)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._streams_changed.wake()
        self._close_waiters.wake()
        self.memory.close()
        self.endpoint.session_ended(self, self._cids)
        self._cids = set()
        connection_tally.closed()

    @property
    def is_closed(self) -> bool:
        return self._closed

    async def wait_closed(self) -> None:
        while not self._closed:
            await self._close_waiters.wait()

    @property
    def streams(self) -> Sequence[MuxedStream]:
        return list(self._streams.values())


def _is_loopback(addr: Any) -> bool:
    host = str(addr[0]) if isinstance(addr, tuple) and addr else ""
    return (
        host.startswith("127.")
        or host in ("::1", "::ffff:127.0.0.1")
        or (host.startswith("::ffff:127."))
    )
