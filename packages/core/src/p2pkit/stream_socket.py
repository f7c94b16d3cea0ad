"""A raw connection over any asyncio stream socket (TCP, Unix domain, ...).

What a stream-socket transport needs, minus the address family: a transport plugin
subclasses :class:`StreamSocketConnection` (addresses as multiaddrs, socket options)
and dials and listens with :func:`dial_stream` / :func:`listen_stream` around
``loop.create_connection`` / ``create_server`` / ``create_unix_connection`` /
``create_unix_server``.

Receive path (:class:`asyncio.BufferedProtocol`): each read goes straight into a buffer
lent for it by a :class:`~p2pkit.bufpool.ReceiveBuffer` (none between reads).  In push
mode the filled slice goes to the receiver in the same call (no task, no queue, no
copy); in pull mode (handshakes, negotiation) it is copied into the read buffer.
Send path: ``write_nowait`` is ``transport.write``; asyncio's ``pause_writing`` /
``resume_writing`` drive the write gate.  ``close_write`` is ``write_eof`` (half-close);
``reset`` aborts with ``SO_LINGER`` 0 (a TCP RST) where the socket supports it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import socket
import struct
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, cast

from p2pkit.abc import Buffer, ConnectionHandler, RawConnection
from p2pkit.bufpool import ReceiveBuffer, connections
from p2pkit.channel import ChannelBase
from p2pkit.errors import ConfigError, ConnectionClosed
from p2pkit.listeners import ListenerSet, ServerListener
from p2pkit.timerwheel import timer_wheel

if TYPE_CHECKING:
    from multiaddr import Multiaddr


__all__ = [
    "ListenerSet",
    "ServerListener",
    "StreamSocketConnection",
    "StreamSocketOptions",
    "StreamSocketProtocol",
    "dial_stream",
    "listen_stream",
]

log = logging.getLogger(__name__)

_LINGER_ZERO = struct.pack("ii", 1, 0)


@dataclasses.dataclass(frozen=True)
class StreamSocketOptions:
    """Settings of :class:`StreamSocketConnection` and of the helpers' dial and listen.

    ``write_high_water``: bytes queued in asyncio's transport before ``write_paused``
    turns True (it turns False again at a quarter of it).  ``read_buffer_size``: the
    largest socket read (the receive buffer grows to it only while reads fill it, and is
    lent from a per-thread pool for each read: an idle connection holds none).
    ``close_timeout``: how long a graceful ``close()`` waits for queued data to go out
    before aborting the connection.  ``close_linger``: once our data is sent, how long
    ``close()`` keeps draining the socket waiting for the peer's EOF (so a peer still
    sending gets no RST before it has read our data); 0 disables.
    ``pull_buffer_limit``: in pull mode, socket reading pauses while more than this many
    bytes are buffered unread (resumes at a quarter).
    """

    dial_timeout: float | None = None
    backlog: int = 128
    write_high_water: int = 1 << 20
    read_buffer_size: int = 1 << 20
    close_timeout: float = 10.0
    close_linger: float = 0.25
    pull_buffer_limit: int = 1 << 20

    _label: ClassVar[str] = "stream socket"
    """Prefix of validation messages (a subclass names its transport)."""

    def __post_init__(self) -> None:
        checks = [
            ("dial_timeout", self.dial_timeout is None or self.dial_timeout > 0, "> 0"),
            ("close_timeout", self.close_timeout > 0, "> 0"),
            ("backlog", self.backlog >= 1, ">= 1"),
            ("write_high_water", self.write_high_water >= 1, ">= 1"),
            ("close_linger", self.close_linger >= 0, ">= 0"),
            ("pull_buffer_limit", self.pull_buffer_limit >= 1, ">= 1"),
            ("read_buffer_size", self.read_buffer_size >= 1024, ">= 1024"),
        ]
        for name, ok, rule in checks:
            if not ok:
                value = getattr(self, name)
                raise ConfigError(f"{self._label}: {name} must be {rule}, got {value}")


class StreamSocketConnection(ChannelBase, RawConnection):
    """A raw connection over an asyncio stream socket (see the module docstring).

    Subclasses set ``transport_name`` and override :meth:`_to_multiaddr` (socket
    address -> multiaddr), and if needed :meth:`_setup_socket` and :meth:`_unsent_bytes`.
    """

    transport_name = "stream"
    _copy_writes = True  # asyncio (3.12+) keeps a reference to what it could not send

    def __init__(self, options: StreamSocketOptions, *, is_initiator: bool) -> None:
        super().__init__(is_initiator=is_initiator, pull_high_water=options.pull_buffer_limit)
        self._options = options
        self._transport: asyncio.Transport | None = None
        self.receive_buffer = ReceiveBuffer(options.read_buffer_size)
        self._lost_waiter: asyncio.Future[None] | None = None
        self._peer_done: asyncio.Future[None] | None = None  # close(): peer's EOF or loss

    # -- for subclasses ----------------------------------------------------------------

    def _to_multiaddr(self, sockaddr: Any) -> Multiaddr | None:
        """The multiaddr of a socket address (``getsockname``/``getpeername`` form)."""

    def _setup_socket(self, sock: Any) -> None:
        """Set socket options once connected (TCP: ``TCP_NODELAY``)."""

    def _unsent_bytes(self) -> int:
        """Bytes the kernel still holds unacknowledged; ``close()`` waits for 0."""
        return 0

    # -- the socket ----------------------------------------------------------------------

    def _socket(self) -> Any:
        """The transport's socket (an asyncio TransportSocket wrapper), or None."""
        return None if self._transport is None else self._transport.get_extra_info("socket")

    def get_socket_option(self, level: int, option: int) -> int:
        """``getsockopt`` on the underlying socket (for tests and diagnostics)."""
        sock = self._socket()
        if sock is None:
            raise ConnectionClosed(f"{self.transport_name} connection is closed")
        return int(sock.getsockopt(level, option))

    def set_socket_option(self, level: int, option: int, value: int) -> None:
        """``setsockopt`` on the underlying socket (for tests and diagnostics)."""
        sock = self._socket()
        if sock is None:
            raise ConnectionClosed(f"{self.transport_name} connection is closed")
        sock.setsockopt(level, option, value)

    @property
    def queued_bytes(self) -> int:
        """Bytes asyncio holds for the socket, not yet handed to the kernel."""
        t = self._transport
        return 0 if t is None else t.get_write_buffer_size()

    # -- raw hooks -----------------------------------------------------------------------

    def _raw_write(self, data: Buffer) -> None:
        t = self._transport
        if t is None:
            raise ConnectionClosed(f"{self.transport_name} connection is closed")
        t.write(data)

    def _raw_write_many(self, parts: Sequence[Buffer]) -> None:
        t = self._transport
        if t is None:
            raise ConnectionClosed(f"{self.transport_name} connection is closed")
        for part in parts:  # one call per muxer frame, not one per part
            t.write(part)

    def _set_reading(self, on: bool) -> None:
        t = self._transport
        if t is None or t.is_closing() or self._eof:
            return  # after EOF asyncio has removed the reader; resuming would re-add it
        if not on:
            if t.is_reading():
                t.pause_reading()
        elif not t.is_reading():
            t.resume_reading()

    async def _raw_close_write(self) -> None:
        t = self._transport
        if t is not None and t.can_write_eof():
            try:
                t.write_eof()  # EOF goes out after the queued data
            except OSError as exc:  # shutdown() of a socket the peer already reset
                raise ConnectionClosed(f"cannot half-close: {exc}") from exc

    async def _raw_close(self) -> None:
        """EOF after the queued data, wait until it is sent, close.

        Until the socket is closed we keep reading (and dropping) what the peer sends:
        closing a TCP socket with unread received bytes makes the kernel send an RST,
        which throws away our unacknowledged data and what the peer had received but not
        read yet.  So: wait until our data is sent (and acknowledged, where
        :meth:`_unsent_bytes` can tell), then (``close_linger``) give the peer a moment
        to answer with its own EOF, then close.  Bounded by ``close_timeout``, then abort.
        """
        t = self._transport
        if t is None:
            return
        loop = asyncio.get_running_loop()
        self._lost_waiter = loop.create_future()
        deadline = loop.time() + self._options.close_timeout
        self._user_paused = self._pull_paused = False
        self._set_reading(True)
        try:
            if t.can_write_eof():
                t.write_eof()  # no-op if close_write() already did it
            await self._wait_sent(t, deadline)
            await self._linger(deadline)
            if not self._gone:
                t.close()
                await _wait_until(self._lost_waiter, deadline)
        except TimeoutError:
            log.debug("%r: close timed out after %ss, aborting", self, self._options.close_timeout)
            self._raw_abort()
        except OSError as exc:
            # shutdown() raises ENOTCONN once the peer has reset the connection: the socket
            # must still be closed, or it stays open (registered, reading) for good.
            log.debug("%r: close failed (%s), aborting", self, exc)
            self._raw_abort()
        except BaseException:
            self._raw_abort()
            raise

    async def _wait_sent(self, t: asyncio.Transport, deadline: float) -> None:
        loop = asyncio.get_running_loop()
        delay = 0.001
        while not self._gone and not self._eof:
            if t.get_write_buffer_size() == 0 and self._unsent_bytes() == 0:
                return
            now = loop.time()
            if now >= deadline:
                raise TimeoutError
            await asyncio.sleep(min(delay, deadline - now))
            delay = min(delay * 2, 0.05)

    async def _linger(self, deadline: float) -> None:
        """Wait (at most ``close_linger``) for the peer's EOF, still draining the socket."""
        linger = self._options.close_linger
        if self._gone or self._eof or linger <= 0:
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

    def _raw_abort(self) -> None:
        t = self._transport
        if t is None:
            return
        sock = self._socket()
        if sock is not None:
            try:  # RST instead of FIN where the socket knows the difference
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_ZERO)
            except OSError:  # pragma: no cover - socket already dead, or no such option
                pass
        t.abort()

    # -- protocol callbacks (called by StreamSocketProtocol) ----------------------------

    def _connection_made(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        connections.opened()
        transport.set_write_buffer_limits(high=self._options.write_high_water)
        sock = self._socket()
        if sock is not None:
            try:
                self._setup_socket(sock)
            except OSError:  # pragma: no cover - raced with a reset
                pass
        self._local = self._to_multiaddr(transport.get_extra_info("sockname"))
        self._remote = self._to_multiaddr(transport.get_extra_info("peername"))

    def _eof_received(self) -> None:
        self.receive_buffer.release()
        self._wake(self._peer_done)
        self._feed_eof()

    def _connection_lost(self, exc: Exception | None) -> None:
        self.receive_buffer.release()
        self._feed_lost(exc)
        self._wake(self._lost_waiter)
        self._wake(self._peer_done)
        self._transport = None
        connections.closed()

    @staticmethod
    def _wake(w: asyncio.Future[None] | None) -> None:
        if w is not None and not w.done():
            w.set_result(None)


async def _wait_until(waiter: asyncio.Future[None], deadline: float) -> None:
    """Wait for ``waiter`` (shielded), raising TimeoutError at ``deadline`` (loop time).

    The bound is a timer of the loop's shared wheel (:mod:`p2pkit.timerwheel`, at most
    1/8 of the delay late), not an asyncio timeout: the wait is almost always one loop
    iteration, and every closing connection's cancelled timeout handle would stay in
    asyncio's timer heap until its deadline, ``close_timeout`` later, keeping part of
    the memory of a burst of closed connections resident.
    """
    loop = asyncio.get_running_loop()
    timer = timer_wheel(loop).call_later(max(deadline - loop.time(), 0.0), lambda: _expire(waiter))
    try:
        await asyncio.shield(waiter)
    finally:
        timer.cancel()


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())


class StreamSocketProtocol(asyncio.BufferedProtocol):
    """The asyncio side of a :class:`StreamSocketConnection` (forwards every callback)."""

    __slots__ = ("_on_made", "conn")

    def __init__(
        self,
        conn: StreamSocketConnection,
        on_made: Callable[[StreamSocketConnection], None] | None = None,
    ) -> None:
        self.conn = conn
        self._on_made = on_made

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Not an isinstance check: uvloop's transports implement asyncio.Transport's
        # interface without subclassing it (event_loop = "uvloop", p2pkit.loops).
        self.conn._connection_made(cast(asyncio.Transport, transport))
        if self._on_made is not None:
            self._on_made(self.conn)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.conn.receive_buffer.get()

    def buffer_updated(self, nbytes: int) -> None:
        rx = self.conn.receive_buffer
        try:
            self.conn._feed(rx.filled(nbytes))
        finally:
            rx.done(nbytes)

    def eof_received(self) -> bool:
        self.conn._eof_received()
        return True  # keep the transport open: we may still write (half-close)

    def connection_lost(self, exc: Exception | None) -> None:
        self.conn._connection_lost(exc)

    def pause_writing(self) -> None:
        self.conn._pause_writing()

    def resume_writing(self) -> None:
        self.conn._resume_writing()


# -- dial and listen helpers ---------------------------------------------------------------

C = TypeVar("C", bound=StreamSocketConnection)


async def dial_stream(conn: C, connect: Callable[..., Awaitable[Any]], *args: Any, **kw: Any) -> C:
    """Connect ``conn``: ``await connect(protocol_factory, *args, **kw)``, e.g.
    ``dial_stream(conn, loop.create_unix_connection, path)``.  Errors propagate
    (``OSError``; the caller's timeout); the caller turns them into DialError."""
    await connect(lambda: StreamSocketProtocol(conn), *args, **kw)
    return conn


async def listen_stream(
    make_conn: Callable[[], StreamSocketConnection],
    handler: ConnectionHandler,
    serve: Callable[..., Awaitable[asyncio.Server]],
    *args: Any,
    **kw: Any,
) -> asyncio.Server:
    """Start a server: ``await serve(protocol_factory, *args, **kw)``, e.g.
    ``listen_stream(make, handler, loop.create_unix_server, path)``.

    Each accepted connection (built by ``make_conn``) goes to ``handler`` synchronously;
    a handler that raises loses that connection (reset), not the server.
    """

    def on_made(conn: StreamSocketConnection) -> None:
        try:
            handler(conn)
        except Exception:
            log.exception("connection handler failed for %r; resetting it", conn)
            conn.reset()

    return await serve(lambda: StreamSocketProtocol(make_conn(), on_made), *args, **kw)
