"""In-process connection pairs for tests: no sockets, same contract as TCP.

:func:`channel_pair` returns two connected :class:`~p2pkit.abc.RawConnection` objects
that behave like the two ends of a loopback TCP connection, so security and muxer
engineers can test against the full :class:`~p2pkit.abc.Channel` contract without the
network:

* bytes written on one end are *copied* into the other end (the writer may reuse its
  buffer at once);
* in push mode they are delivered with ``loop.call_soon``, never re-entrantly inside
  the writer's ``write_nowait`` call (a socket never calls back into its writer);
* flow control: when more than ``high_water`` bytes sit un-consumed at the reader
  (not yet read in pull mode, not yet delivered in push mode because the reader paused),
  the writer's ``write_paused`` turns True; it turns False again when the reader has
  brought the backlog down to a quarter of ``high_water`` (hysteresis as in asyncio);
* ``pause_reading`` leaves incoming bytes "in the kernel": they are held back, not
  delivered and not readable, until ``resume_reading``;
* ``reset`` makes the peer's reads raise :class:`~p2pkit.errors.ConnectionClosed` and
  reports ``connection_lost(exc)`` to its push-mode receiver;
* ``close`` is instant (the peer already holds every byte written); bytes written to
  an end that has fully closed are dropped silently.  Real TCP answers such writes
  with an RST a round trip later; this pair does not emulate that.

Addresses: ``/memory/<n>`` is not a multiaddr the ``multiaddr`` library can parse,
so each end reports a *fake* ``/ip4/127.0.0.1/tcp/<n>`` address (``n`` counts up from
40000 per pair).  Nothing listens there: do not dial it.

:func:`tcp_channel_pair` returns the same thing over a real loopback TCP connection made
with the ``p2pkit-tcp`` plugin (imported lazily: the core does not depend on it).
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from typing import TYPE_CHECKING

from p2pkit.abc import Buffer, RawConnection, Receiver
from p2pkit.errors import ConnectionClosed, StreamClosed
from p2pkit.io import ReadBuffer, WriteGate

if TYPE_CHECKING:
    from multiaddr import Multiaddr

__all__ = ["MemoryConnection", "channel_pair", "tcp_channel_pair"]

_fake_ports = itertools.count(40000)


class MemoryConnection(RawConnection):
    """One end of an in-process connection (see the module docstring)."""

    transport_name = "memory"

    def __init__(
        self, *, is_initiator: bool, high_water: int, local_addr: str, remote_addr: str
    ) -> None:
        self.is_initiator = is_initiator
        self._high_water = high_water
        self._low_water = high_water // 4
        self._local_addr_s = local_addr
        self._remote_addr_s = remote_addr
        self._peer: MemoryConnection | None = None

        # Receive side: pull mode reads from _buf; bytes the reader cannot take yet
        # (push mode, or paused) wait in _pending, like bytes in a kernel buffer.
        self._buf = ReadBuffer(on_consume=self._consumed)
        self._pending: deque[bytes] = deque()
        self._pending_size = 0
        self._incoming_eof = False
        self._eof_delivered = False
        self._incoming_exc: BaseException | None = None
        self._receiver: Receiver | None = None
        self._reading_paused = False
        self._flush_scheduled = False
        self._lost_delivered = False

        # Send side.
        self._gate = WriteGate()
        self._write_closed = False
        self._closed = False

    # -- properties --------------------------------------------------------------------

    @property
    def local_addr(self) -> Multiaddr | None:
        from multiaddr import Multiaddr

        return Multiaddr(self._local_addr_s)

    @property
    def remote_addr(self) -> Multiaddr | None:
        from multiaddr import Multiaddr

        return Multiaddr(self._remote_addr_s)

    @property
    def closed(self) -> bool:
        return self._closed or self._incoming_exc is not None

    @property
    def write_paused(self) -> bool:
        return self._gate.paused

    def _queued(self) -> int:
        """Bytes received here that the application has not consumed yet."""
        return self._buf.size + self._pending_size

    # -- pull mode ---------------------------------------------------------------------

    async def read(self, max_bytes: int = -1) -> bytes:
        if self._receiver is not None:
            raise RuntimeError("read() after start_push()")
        return await self._buf.read(max_bytes)

    def unread(self, data: bytes) -> None:
        if self._receiver is not None:
            raise RuntimeError("unread() after start_push()")
        self._buf.unread(data)

    # -- push mode ---------------------------------------------------------------------

    def start_push(self, receiver: Receiver) -> None:
        if self._receiver is not None:
            raise RuntimeError("start_push() called twice")
        self._receiver = receiver
        exc = self._buf.exception
        if exc is None:
            data = self._buf.read_nowait(-1)
            if data:
                receiver.data_received(memoryview(data))
                data = self._buf.read_nowait(-1)
            if data == b"":
                # EOF was already fed to the buffer: nothing is pending behind it.
                self._eof_delivered = True
                receiver.eof_received()
        # Held-back bytes, a later EOF and loss go through the normal scheduled path.
        self._schedule_flush()

    def pause_reading(self) -> None:
        self._reading_paused = True

    def resume_reading(self) -> None:
        if self._reading_paused:
            self._reading_paused = False
            self._schedule_flush()

    # -- send side ---------------------------------------------------------------------

    def write_nowait(self, data: Buffer) -> None:
        if self.closed:
            raise ConnectionClosed("memory connection is closed")
        if self._write_closed:
            raise StreamClosed("write after close_write()")
        if not data:
            return
        peer = self._peer
        assert peer is not None
        peer._receive(bytes(data))
        if peer._queued() > self._high_water and not peer._closed:
            self._gate.pause()

    async def write(self, data: Buffer) -> None:
        self.write_nowait(data)
        if self._gate.paused:
            await self.drain()

    async def drain(self) -> None:
        if self.closed:
            raise ConnectionClosed("memory connection is closed")
        await self._gate.wait()

    async def close_write(self) -> None:
        self._close_write()

    def _close_write(self) -> None:
        if self._write_closed or self.closed:
            return
        self._write_closed = True
        assert self._peer is not None
        self._peer._receive_eof()

    async def close(self) -> None:
        if self._closed:
            return
        self._close_write()
        self._closed = True
        self._drop_received()
        self._buf.feed_eof()
        self._gate.close(ConnectionClosed("memory connection is closed"))
        self._schedule_flush()  # connection_lost(None) to a push receiver

    def reset(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._write_closed = True
        self._drop_received()
        self._buf.fail(ConnectionClosed("memory connection was reset locally"))
        self._gate.close(ConnectionClosed("memory connection was reset locally"))
        assert self._peer is not None
        self._peer._receive_reset(ConnectionClosed("memory connection reset by peer"))
        self._schedule_flush()

    # -- called by the peer ------------------------------------------------------------

    def _receive(self, data: bytes) -> None:
        if self._closed or self._incoming_exc is not None or self._incoming_eof:
            return  # we stopped reading: the bytes are dropped, as by a kernel
        if self._receiver is None and not self._reading_paused and not self._pending:
            self._buf.feed(data)
            return
        self._pending.append(data)
        self._pending_size += len(data)
        self._schedule_flush()

    def _receive_eof(self) -> None:
        if self._closed or self._incoming_exc is not None:
            return
        self._incoming_eof = True
        if self._receiver is None and not self._reading_paused and not self._pending:
            self._buf.feed_eof()
        else:
            self._schedule_flush()

    def _receive_reset(self, exc: BaseException) -> None:
        if self._closed or self._incoming_exc is not None:
            return
        self._incoming_exc = exc
        self._drop_received()
        self._buf.fail(exc)
        self._gate.close(exc)
        self._schedule_flush()

    # -- internals ---------------------------------------------------------------------

    def _drop_received(self) -> None:
        self._pending.clear()
        self._pending_size = 0
        self._release_peer_writer()

    def _consumed(self, _n: int) -> None:
        self._release_peer_writer()

    def _release_peer_writer(self) -> None:
        peer = self._peer
        if peer is not None and peer._gate.paused:
            if self._closed or self._queued() <= self._low_water:
                peer._gate.resume()

    def _schedule_flush(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        """Deliver what the reader can take now (runs from the event loop, like a socket)."""
        self._flush_scheduled = False
        receiver = self._receiver
        if receiver is None:
            if self._reading_paused or self._closed:
                return
            while self._pending:
                self._buf.feed(self._pending.popleft())
            self._pending_size = 0
            if self._incoming_eof:
                self._buf.feed_eof()
            return
        if self._closed or self._incoming_exc is not None:
            if not self._lost_delivered:
                self._lost_delivered = True
                receiver.connection_lost(None if self._closed else self._incoming_exc)
            return
        while self._pending and not self._reading_paused and self._receiver is not None:
            chunk = self._pending.popleft()
            self._pending_size -= len(chunk)
            receiver.data_received(memoryview(chunk))
            if self._closed or self._incoming_exc is not None:
                # The receiver closed or reset us from inside the callback.
                return
        self._release_peer_writer()
        if self._incoming_eof and not self._pending and not self._reading_paused:
            if not self._eof_delivered:
                self._eof_delivered = True
                receiver.eof_received()


def channel_pair(*, high_water: int = 1 << 20) -> tuple[RawConnection, RawConnection]:
    """Two connected in-process connections, initiator first (see the module docstring)."""
    port_a, port_b = next(_fake_ports), next(_fake_ports)
    addr_a, addr_b = f"/ip4/127.0.0.1/tcp/{port_a}", f"/ip4/127.0.0.1/tcp/{port_b}"
    a = MemoryConnection(
        is_initiator=True, high_water=high_water, local_addr=addr_a, remote_addr=addr_b
    )
    b = MemoryConnection(
        is_initiator=False, high_water=high_water, local_addr=addr_b, remote_addr=addr_a
    )
    a._peer = b
    b._peer = a
    return a, b


async def tcp_channel_pair() -> tuple[RawConnection, RawConnection]:
    """Two connected TCP connections over 127.0.0.1 (dialer first), via ``p2pkit-tcp``.

    The caller closes both connections.
    """
    from multiaddr import Multiaddr

    from p2pkit_tcp import TcpOptions, TcpTransport

    transport = TcpTransport(TcpOptions())
    accepted: asyncio.Future[RawConnection] = asyncio.get_running_loop().create_future()

    def on_conn(conn: RawConnection) -> None:
        if not accepted.done():
            accepted.set_result(conn)
        else:  # pragma: no cover - nobody else knows the port
            conn.reset()

    listener = await transport.listen(Multiaddr("/ip4/127.0.0.1/tcp/0"), on_conn)
    try:
        dialed = await transport.dial(listener.addrs[0])
        try:
            inbound = await asyncio.wait_for(accepted, 10.0)
        except BaseException:
            dialed.reset()
            raise
    finally:
        await listener.close()
        await transport.close()
    return dialed, inbound
