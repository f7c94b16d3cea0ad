"""One TCP connection: an asyncio BufferedProtocol behind the RawConnection interface.

Receive path (DESIGN.md section 3): the socket is read straight into one preallocated
``bytearray``.  In push mode the filled slice goes to the receiver in the same call
(no task, no queue, no copy); in pull mode (handshakes, negotiation) it is copied into
a :class:`~p2pkit.io.ReadBuffer`.  Send path: ``write_nowait`` is ``transport.write``;
asyncio's ``pause_writing``/``resume_writing`` drive a :class:`~p2pkit.io.WriteGate`.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from p2pkit.abc import Buffer, RawConnection, Receiver
from p2pkit.errors import ConnectionClosed, StreamClosed
from p2pkit.io import ReadBuffer, WriteGate
from p2pkit_tcp.addresses import from_sockaddr
from p2pkit_tcp.options import TcpOptions

if TYPE_CHECKING:
    from multiaddr import Multiaddr

log = logging.getLogger(__name__)

_LINGER_ZERO = struct.pack("ii", 1, 0)

try:  # Linux: unacknowledged bytes in a socket's send queue (SIOCOUTQ == TIOCOUTQ)
    import fcntl
    import termios

    _SIOCOUTQ: int | None = termios.TIOCOUTQ if sys.platform == "linux" else None
except ImportError:  # pragma: no cover - Windows
    _SIOCOUTQ = None


class TcpConnection(RawConnection):
    """A raw TCP connection (see the module docstring).

    Built by :class:`~p2pkit_tcp.TcpTransport`; not constructed by applications.
    """

    transport_name = "tcp"

    def __init__(self, options: TcpOptions, *, is_initiator: bool) -> None:
        self.is_initiator = is_initiator
        self._options = options
        self._transport: asyncio.Transport | None = None
        self._local: Multiaddr | None = None
        self._remote: Multiaddr | None = None
        self._rbuf = memoryview(bytearray(options.read_buffer_size))
        self._buf = ReadBuffer(on_consume=self._consumed)
        self._user_paused = False
        self._pull_paused = False
        self._receiver: Receiver | None = None
        self._gate = WriteGate()
        self._eof = False
        self._lost = False
        self._lost_exc: ConnectionClosed | None = None
        self._lost_waiter: asyncio.Future[None] | None = None
        self._peer_done: asyncio.Future[None] | None = None  # close(): peer's FIN or loss
        self._write_closed = False
        self._closed = False

    # -- properties --------------------------------------------------------------------

    @property
    def local_addr(self) -> Multiaddr | None:
        return self._local

    @property
    def remote_addr(self) -> Multiaddr | None:
        return self._remote

    @property
    def closed(self) -> bool:
        return self._closed or self._lost

    @property
    def write_paused(self) -> bool:
        return self._gate.paused

    def get_socket_option(self, level: int, option: int) -> int:
        """``getsockopt`` on the underlying socket (for tests and diagnostics)."""
        sock = self._socket()
        if sock is None:
            raise ConnectionClosed("tcp connection is closed")
        return int(sock.getsockopt(level, option))

    def __repr__(self) -> str:
        role = "dialer" if self.is_initiator else "listener"
        return f"<TcpConnection {role} {self._local} <-> {self._remote}>"

    # -- pull mode ---------------------------------------------------------------------

    async def read(self, max_bytes: int = -1) -> bytes:
        if self._receiver is not None:
            raise RuntimeError("read() after start_push()")
        data = await self._buf.read(max_bytes)
        if not data and max_bytes != 0 and self._lost_exc is not None and not self._eof:
            # The stream broke before the peer's FIN.  (After a clean FIN the read side
            # ended normally: a later write error is reported to writers only.)
            raise self._lost_exc
        return data

    def unread(self, data: bytes) -> None:
        if self._receiver is not None:
            raise RuntimeError("unread() after start_push()")
        self._buf.unread(data)

    # -- push mode ---------------------------------------------------------------------

    def start_push(self, receiver: Receiver) -> None:
        if self._receiver is not None:
            raise RuntimeError("start_push() called twice")
        self._receiver = receiver
        if self._buf.exception is None:
            data = self._buf.read_nowait(-1)
            if data:
                receiver.data_received(memoryview(data))
        if self._pull_paused:
            self._pull_paused = False
            self._apply_reading()
        if self._eof:
            receiver.eof_received()
        if self._lost:
            receiver.connection_lost(self._lost_exc)

    def pause_reading(self) -> None:
        self._user_paused = True
        self._apply_reading()

    def resume_reading(self) -> None:
        self._user_paused = False
        self._apply_reading()

    def _apply_reading(self) -> None:
        """Read from the socket unless the user paused us or the pull buffer is full."""
        t = self._transport
        if t is None or t.is_closing() or self._eof:
            return  # after EOF asyncio has removed the reader; resuming would re-add it
        if self._user_paused or self._pull_paused:
            if t.is_reading():
                t.pause_reading()
        elif not t.is_reading():
            t.resume_reading()

    def _consumed(self, _n: int) -> None:
        if self._pull_paused and self._buf.size <= self._options.pull_buffer_limit // 4:
            self._pull_paused = False
            self._apply_reading()

    # -- send side ---------------------------------------------------------------------

    def write_nowait(self, data: Buffer) -> None:
        if self._closed or self._lost or self._transport is None:
            raise ConnectionClosed("tcp connection is closed")
        if self._write_closed:
            raise StreamClosed("write after close_write()")
        self._transport.write(data)

    async def write(self, data: Buffer) -> None:
        # The caller may reuse ``data`` when we return, but asyncio on 3.12+ keeps a
        # reference to what it could not send at once: hand it an immutable copy.
        self.write_nowait(data if isinstance(data, bytes) else bytes(data))
        if self._gate.paused:
            await self.drain()

    async def drain(self) -> None:
        if self._closed or self._lost:
            raise ConnectionClosed("tcp connection is closed")
        await self._gate.wait()

    async def close_write(self) -> None:
        if self._write_closed or self._closed or self._lost:
            return
        self._write_closed = True
        t = self._transport
        if t is not None and t.can_write_eof():
            t.write_eof()  # FIN goes out after the queued data

    async def close(self) -> None:
        """Graceful close: FIN after the queued data, wait until it is acknowledged, close.

        Until the socket is closed we keep reading (and dropping) what the peer sends:
        closing a socket with unread received bytes makes the kernel send an RST, which
        throws away our unacknowledged data and makes the peer's next write fail, and
        asyncio then drops what the peer had received but not read yet.  So: wait until
        our data is acknowledged, then (``close_linger``) give the peer a moment to
        answer with its own FIN, then close.  Bounded by ``close_timeout``, then abort.
        """
        if self._closed:
            w = self._lost_waiter
            if w is not None and not w.done():
                await asyncio.shield(w)
            return
        self._closed = True
        self._write_closed = True
        t = self._transport
        if t is None or self._lost:
            return
        loop = asyncio.get_running_loop()
        self._lost_waiter = loop.create_future()
        deadline = loop.time() + self._options.close_timeout
        self._user_paused = self._pull_paused = False
        self._apply_reading()
        if t.can_write_eof():
            t.write_eof()  # no-op if close_write() already did it
        try:
            await self._wait_sent(t, deadline)
            await self._linger(deadline)
            if not self._lost:
                t.close()
                async with asyncio.timeout_at(deadline):
                    await asyncio.shield(self._lost_waiter)
        except TimeoutError:
            log.debug("%r: close timed out after %ss, aborting", self, self._options.close_timeout)
            self._abort()
        except asyncio.CancelledError:
            self._abort()
            raise

    async def _wait_sent(self, t: asyncio.Transport, deadline: float) -> None:
        """Wait until asyncio's buffer is empty and the kernel has no unacked bytes."""
        loop = asyncio.get_running_loop()
        delay = 0.001
        while not self._lost and not self._eof:
            if t.get_write_buffer_size() == 0 and self._unacked_bytes() == 0:
                return
            now = loop.time()
            if now >= deadline:
                raise TimeoutError
            await asyncio.sleep(min(delay, deadline - now))
            delay = min(delay * 2, 0.05)

    async def _linger(self, deadline: float) -> None:
        """Wait (at most ``close_linger``) for the peer's FIN, still draining the socket."""
        linger = self._options.close_linger
        if self._lost or self._eof or linger <= 0:
            return
        loop = asyncio.get_running_loop()
        self._peer_done = loop.create_future()
        try:
            async with asyncio.timeout_at(min(deadline, loop.time() + linger)):
                await self._peer_done
        except TimeoutError:
            pass  # the peer keeps its side open: close anyway
        finally:
            self._peer_done = None

    def _unacked_bytes(self) -> int:
        """Bytes the kernel still holds unacknowledged (Linux SIOCOUTQ; 0 elsewhere)."""
        sock = self._socket()
        if _SIOCOUTQ is None or sock is None:
            return 0
        try:
            raw = fcntl.ioctl(sock.fileno(), _SIOCOUTQ, b"\0\0\0\0")
        except OSError:
            return 0
        return int(struct.unpack("i", raw)[0])

    def reset(self) -> None:
        """Abort with SO_LINGER 0: the peer gets a TCP RST, queued data is dropped."""
        if self._lost:
            return
        self._closed = True
        self._write_closed = True
        exc = ConnectionClosed("tcp connection was reset locally")
        self._buf.fail(exc)
        self._gate.close(exc)
        self._abort()

    def _abort(self) -> None:
        t = self._transport
        if t is None:
            return
        sock = self._socket()
        if sock is not None:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_ZERO)
            except OSError:  # pragma: no cover - socket already dead
                pass
        t.abort()

    def _socket(self) -> Any:
        """The transport's socket (an asyncio TransportSocket wrapper), or None."""
        t = self._transport
        return None if t is None else t.get_extra_info("socket")

    # -- protocol callbacks (called by _TcpProtocol) -----------------------------------

    def _connection_made(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        transport.set_write_buffer_limits(high=self._options.write_high_water)
        sock = self._socket()
        if sock is not None:
            try:
                sock.setsockopt(
                    socket.IPPROTO_TCP, socket.TCP_NODELAY, 1 if self._options.nodelay else 0
                )
            except OSError:  # pragma: no cover - raced with a reset
                pass
        self._local = from_sockaddr(transport.get_extra_info("sockname"))
        self._remote = from_sockaddr(transport.get_extra_info("peername"))

    def _buffer_updated(self, nbytes: int) -> None:
        if self._closed:
            return  # close() keeps draining the socket; nobody wants these bytes
        receiver = self._receiver
        if receiver is not None:
            receiver.data_received(self._rbuf[:nbytes])
        else:
            buf = self._buf
            buf.feed(bytes(self._rbuf[:nbytes]))
            if buf.size > self._options.pull_buffer_limit and not self._pull_paused:
                # Nobody is reading: leave further bytes in the kernel so the peer's
                # writes back up (TCP flow control) instead of growing this buffer.
                self._pull_paused = True
                self._apply_reading()

    def _eof_received(self) -> None:
        if self._eof:
            return
        self._eof = True
        self._wake_peer_done()
        if self._closed:
            return
        if self._receiver is not None:
            self._receiver.eof_received()
        else:
            self._buf.feed_eof()

    def _connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        err: ConnectionClosed | None = None
        if exc is not None:
            err = ConnectionClosed(f"tcp connection lost: {type(exc).__name__}: {exc}")
            err.__cause__ = exc
            self._lost_exc = err
        gate_exc = err or ConnectionClosed("tcp connection is closed")
        self._gate.close(gate_exc)
        if self._receiver is not None:
            self._receiver.connection_lost(err)
        else:
            # As the kernel does: bytes that arrived before an RST stay readable and the
            # error comes after them (read() turns the EOF into ``_lost_exc``).
            self._buf.feed_eof()
        w = self._lost_waiter
        if w is not None and not w.done():
            w.set_result(None)
        self._wake_peer_done()
        self._transport = None

    def _wake_peer_done(self) -> None:
        w = self._peer_done
        if w is not None and not w.done():
            w.set_result(None)


class TcpProtocol(asyncio.BufferedProtocol):
    """The asyncio side of a :class:`TcpConnection` (thin: forwards every callback)."""

    __slots__ = ("_on_made", "conn")

    def __init__(
        self,
        conn: TcpConnection,
        on_made: Callable[[TcpConnection], None] | None = None,
    ) -> None:
        self.conn = conn
        self._on_made = on_made

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.conn._connection_made(transport)
        if self._on_made is not None:
            self._on_made(self.conn)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.conn._rbuf

    def buffer_updated(self, nbytes: int) -> None:
        self.conn._buffer_updated(nbytes)

    def eof_received(self) -> bool:
        self.conn._eof_received()
        return True  # keep the transport open: we may still write (half-close)

    def connection_lost(self, exc: Exception | None) -> None:
        self.conn._connection_lost(exc)

    def pause_writing(self) -> None:
        self.conn._gate.pause()

    def resume_writing(self) -> None:
        self.conn._gate.resume()
