"""One WebSocket connection: a TCP (or TLS) socket carrying binary messages.

It is the TCP transport's connection (the core's stream-socket data path: lent receive
buffers, push and pull modes, write gate, lingering close, reset) with two things put
in the middle of the byte path:

* **before** the connection is handed to anyone, the HTTP upgrade
  (:mod:`p2pkit_websocket.handshake`): the listener calls its handler, and ``dial``
  returns, only once the upgrade succeeded;
* **after** it, framing (:mod:`p2pkit_websocket.frames`): each socket read is parsed in
  place and payload bytes go straight to ``_feed`` (the upgrader's read buffer in pull
  mode, the security layer in push mode), slices of the receive buffer when unmasked;
  each write becomes one binary message (several above ``max_frame_size``).

Close mapping: ``close_write()`` sends a Close frame (1000) and the peer's Close frame
is our EOF, so libp2p's half-close works between two p2pkit nodes (RFC 6455 peers answer
a Close with theirs and close, which reads as EOF then loss).  ``close()`` sends the
Close frame if not done, then closes the socket as TCP does.  ``reset()`` aborts the
socket (RST).  A protocol error of the peer sends a Close frame with its code (1002,
1003 text frame, 1007, 1008 ping flood, 1009 too big), reports ``ConnectionClosed`` to
our reader and closes the socket gracefully, so the peer can read why.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from p2pkit.abc import Buffer
from p2pkit.errors import ConnectionClosed, P2PError, TransportError
from p2pkit.logs import get_logger
from p2pkit.stream_socket import StreamSocketProtocol
from p2pkit.tcp_socket import TcpConnection
from p2pkit_websocket.addresses import from_sockaddr
from p2pkit_websocket.frames import (
    CLOSE_NORMAL,
    CLOSE_POLICY_VIOLATION,
    OP_PONG,
    CloseReceived,
    Data,
    FrameReader,
    FrameWriter,
    Ping,
    WsProtocolError,
)
from p2pkit_websocket.handshake import ClientHandshake, ServerHandshake
from p2pkit_websocket.options import WsOptions

if TYPE_CHECKING:
    from multiaddr import Multiaddr

    from p2pkit.network import AdmissionTicket, InboundAdmission

log = get_logger("websocket")

_closers: set[asyncio.Task[None]] = set()  # graceful closes after a refusal or an error

_SENDMSG = sys.version_info >= (3, 12)
"""asyncio's ``writelines`` is one ``sendmsg`` of all parts from 3.12 on; before, it
joins them (a copy of every payload), and a write per part costs less (measured)."""


def _send(t: asyncio.Transport, parts: list[Buffer]) -> None:
    """A frame header and its payload (or several frames), without joining them.

    The selector transport's ``writelines`` (3.12, 3.13.0) queues what the kernel did not
    take but never asks the protocol to pause (only ``write`` does): without the check
    below, a writer would never see backpressure.  Re-applying the transport's own limits
    is the public way to run that check; asyncio then resumes us as usual.
    """
    if _SENDMSG:
        t.writelines(parts)
        low, high = t.get_write_buffer_limits()
        if t.get_write_buffer_size() > high:
            t.set_write_buffer_limits(high, low)
    else:
        for part in parts:
            t.write(part)


class WsConnection(TcpConnection):
    """A raw WebSocket connection (see the module docstring).

    Built by :class:`~p2pkit_websocket.WsTransport`; not constructed by applications.
    ``on_ready`` (listener side) is called once the upgrade succeeded; the dialer waits
    for :attr:`ready`.
    """

    transport_name = "websocket"

    def __init__(
        self,
        options: WsOptions,
        *,
        is_initiator: bool,
        tls: bool,
        host_header: str = "",
        on_ready: Callable[[WsConnection], None] | None = None,
        admit: InboundAdmission | None = None,
    ) -> None:
        super().__init__(options, is_initiator=is_initiator)
        self._admit = admit
        self.admission: AdmissionTicket | None = None
        """The host's ticket, taken when the socket was accepted (listener side): the
        upgrade counts as a pending handshake.  The swarm takes it over with the
        connection; until then it is given back if the upgrade fails."""
        self._handed_over = False
        self._ws_options = options
        self._tls = tls
        self._frames = FrameReader(
            expect_masked=not is_initiator, max_message_size=options.max_message_size, pongs=False
        )
        self._framer = FrameWriter(mask=is_initiator, max_frame_size=options.max_frame_size)
        self._handshake: ServerHandshake | ClientHandshake | None = (
            ClientHandshake(host_header, tls=tls) if is_initiator else ServerHandshake()
        )
        self._on_ready = on_ready
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._timer: asyncio.TimerHandle | None = None
        self._upgraded = False
        self._close_sent = False
        self._dead = False  # no more parsing: a protocol error, or a refused upgrade
        self._soft_abort = False  # _raw_abort closes gracefully (our Close frame must go out)
        self._ping_window = 0.0
        self._pings = 0

    @property
    def upgraded(self) -> bool:
        return self._upgraded

    # -- addresses and socket ------------------------------------------------------------

    def _to_multiaddr(self, sockaddr: Any) -> Multiaddr | None:
        return from_sockaddr(sockaddr, tls=self._tls)

    def _connection_made(self, transport: asyncio.Transport) -> None:
        super()._connection_made(transport)
        hs = self._handshake
        if isinstance(hs, ClientHandshake):
            transport.write(hs.request)
        else:
            if self._admit is not None and not self._take_ticket(self._admit):
                return
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(self._ws_options.handshake_timeout, self._expired)

    def _take_ticket(self, admit: InboundAdmission) -> bool:
        """Ask the host before reading a byte of the upgrade (as TCP's connections are
        asked at accept): refused, the socket is reset at once."""
        try:
            self.admission = admit(self.local_addr, self.remote_addr)
        except P2PError:  # logged (rate-limited) where it was decided
            self._dead = True
            self.reset()
            return False
        except Exception as exc:  # a bug in the admission must not stop the listener
            log.warning("WebSocket admission failed: %r", exc)
            self._dead = True
            self.reset()
            return False
        return True

    def _expired(self) -> None:
        self._timer = None
        if self._handshake is not None:
            timeout = self._ws_options.handshake_timeout
            log.debug("%r: no WebSocket upgrade within %ss", self, timeout)
            self._dead = True
            self.reset()

    def _eof_received(self) -> None:
        if self._handshake is not None:  # the peer gave up before the upgrade
            self._dead = True
            self._fail_ready(ConnectionClosed("EOF during the WebSocket upgrade"))
            self.reset()
            return
        super()._eof_received()

    def _connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.admission is not None and not self._handed_over:
            self.admission.close()  # the upgrade failed: its place is free again
            self.admission = None
        self._fail_ready(ConnectionClosed(f"connection lost during the upgrade: {exc}"))
        super()._connection_lost(exc)

    def _fail_ready(self, exc: BaseException) -> None:
        if not self.ready.done():
            self.ready.set_exception(exc)
            self.ready.exception()  # retrieved: on the listener side nobody awaits it

    # -- receive path ------------------------------------------------------------------------

    def _ws_data(self, data: memoryview) -> None:
        if self._handshake is not None:
            self._handshake_data(data)
            return
        if self._dead:
            return
        try:
            events = self._frames.receive_data(data)
        except WsProtocolError as exc:
            self._protocol_error(exc)
            return
        for ev in events:
            if self._dead:  # a ping flood found in this very read
                return
            if type(ev) is Data:
                for piece in ev.pieces():
                    self._feed(piece)
            elif type(ev) is Ping:
                self._on_ping(ev.payload)
            elif type(ev) is CloseReceived:
                self._wake(self._peer_done)
                self._feed_eof()

    def _handshake_data(self, data: memoryview) -> None:
        hs = self._handshake
        t = self._transport
        if t is None:
            return
        if isinstance(hs, ClientHandshake):
            try:
                leftover = hs.receive_data(data)
            except TransportError as exc:
                self._handshake = None
                self._dead = True
                self._fail_ready(exc)
                self.reset()
                return
            if leftover is None:
                return
            self._handshake = None
            self._upgraded = True
            if not self.ready.done():
                self.ready.set_result(None)
        else:
            assert hs is not None
            result = hs.receive_data(data)
            if result is None:
                return
            self._handshake = None
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            t.write(result.response)
            if not result.accepted:
                log.debug("%r: upgrade refused: %s", self, result.error)
                self._dead = True
                self._spawn_close()
                return
            self._upgraded = True
            self.ready.set_result(None)
            leftover = result.leftover
            if self._on_ready is not None:
                self._handed_over = True  # the ticket goes with the connection
                self._on_ready(self)
        if leftover:
            self._ws_data(memoryview(leftover))

    def _on_ping(self, payload: bytes) -> None:
        now = time.monotonic()
        if now - self._ping_window >= 1.0:
            self._ping_window, self._pings = now, 0
        self._pings += 1
        limit = self._ws_options.max_pings_per_second
        if self._pings > 10 * limit:
            self._protocol_error(WsProtocolError(CLOSE_POLICY_VIOLATION, "ping flood"))
            return
        t = self._transport
        if self._pings > limit or self._close_sent or t is None:
            return  # over the rate, or we may not send: no pong
        if t.get_write_buffer_size() < self._ws_options.write_high_water:
            t.write(self._framer.control(OP_PONG, payload))

    def _protocol_error(self, exc: WsProtocolError) -> None:
        log.debug("%r: %s", self, exc)
        self._dead = True
        self._send_close(exc.code, str(exc))
        err = ConnectionClosed(str(exc))
        err.__cause__ = exc
        self._soft_abort = True
        self._fail(err)

    # -- send path ---------------------------------------------------------------------------

    def _raw_write(self, data: Buffer) -> None:
        t = self._transport
        if t is None:
            raise ConnectionClosed("websocket connection is closed")
        _send(t, self._framer.message((data,)))

    def _raw_write_many(self, parts: Sequence[Buffer]) -> None:
        t = self._transport
        if t is None:
            raise ConnectionClosed("websocket connection is closed")
        _send(t, self._framer.message(parts))

    def _send_close(self, code: int, reason: str = "") -> None:
        t = self._transport
        if self._close_sent or not self._upgraded or t is None or t.is_closing():
            return
        self._close_sent = True
        t.write(self._framer.close(code, reason))

    async def _raw_close_write(self) -> None:
        self._send_close(CLOSE_NORMAL)

    async def _raw_close(self) -> None:
        self._send_close(CLOSE_NORMAL)
        await super()._raw_close()

    def _raw_abort(self) -> None:
        if self._soft_abort:
            self._spawn_close()
        else:
            super()._raw_abort()

    def _spawn_close(self) -> None:
        """Close the socket gracefully in the background (what we wrote goes out first)."""
        self._soft_abort = False
        task = asyncio.get_running_loop().create_task(TcpConnection._raw_close(self))
        _closers.add(task)
        task.add_done_callback(_closers.discard)


class WsProtocol(StreamSocketProtocol):
    """The asyncio side of a :class:`WsConnection`: socket reads go to the framing."""

    __slots__ = ()

    conn: WsConnection

    def buffer_updated(self, nbytes: int) -> None:
        rx = self.conn.receive_buffer
        try:
            self.conn._ws_data(rx.filled(nbytes))
        finally:
            rx.done(nbytes)
