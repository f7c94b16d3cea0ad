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
with the core's :mod:`p2pkit.stream_socket` (no transport plugin involved).

The channel state machine (pull/push modes, EOF, loss, write gate) is
:class:`~p2pkit.channel.ChannelBase`'s; this module only models the "kernel" between
the two ends: held-back bytes, scheduled delivery and the writer's flow control.
"""

from __future__ import annotations

import asyncio
import itertools
import socket
from collections import deque
from typing import Any

from multiaddr import Multiaddr

from p2pkit.abc import Buffer, RawConnection
from p2pkit.channel import ChannelBase
from p2pkit.errors import ConnectionClosed
from p2pkit.stream_socket import (
    StreamSocketConnection,
    StreamSocketOptions,
    dial_stream,
    listen_stream,
)

__all__ = ["MemoryConnection", "channel_pair", "tcp_channel_pair"]

_fake_ports = itertools.count(40000)


class MemoryConnection(ChannelBase, RawConnection):
    """One end of an in-process connection (see the module docstring)."""

    transport_name = "memory"

    def __init__(
        self, *, is_initiator: bool, high_water: int, local_addr: str, remote_addr: str
    ) -> None:
        super().__init__(is_initiator=is_initiator)
        self._high_water = high_water
        self._low_water = high_water // 4
        self._local = Multiaddr(local_addr)
        self._remote = Multiaddr(remote_addr)
        self._peer: MemoryConnection | None = None
        # Bytes the reader cannot take yet (push mode: until the scheduled delivery;
        # paused: until resumed) wait here, like bytes in a kernel buffer.
        self._pending: deque[bytes] = deque()
        self._pending_size = 0
        self._incoming_eof = False
        self._incoming_exc: BaseException | None = None
        self._reading = True
        self._flush_scheduled = False
        self._loss_scheduled = False  # deliver _feed_lost(_loss_exc) at the next flush
        self._loss_exc: BaseException | None = None
        self._eof_sent = False

    @property
    def closed(self) -> bool:
        return super().closed or self._incoming_exc is not None

    def _queued(self) -> int:
        """Bytes received here that the application has not consumed yet."""
        return self._rbuf.size + self._pending_size

    # -- raw hooks ---------------------------------------------------------------------

    def _raw_write(self, data: Buffer) -> None:
        if not data:
            return
        peer = self._peer
        assert peer is not None
        peer._receive(bytes(data))
        if peer._queued() > self._high_water and not peer._closed:
            self._pause_writing()

    async def _raw_close_write(self) -> None:
        self._send_eof()

    async def _raw_close(self) -> None:
        """Instant: the peer already holds every byte written."""
        self._send_eof()
        self._drop_received()
        self._lose_later(None)

    def _raw_abort(self) -> None:
        self._eof_sent = True
        assert self._peer is not None
        self._peer._receive_reset(ConnectionClosed("memory connection reset by peer"))
        self._drop_received()
        self._lose_later(None)

    def _set_reading(self, on: bool) -> None:
        self._reading = on
        if on:
            self._schedule_flush()

    def _consumed(self, n: int) -> None:
        super()._consumed(n)
        self._release_peer_writer()

    # -- called by the peer ------------------------------------------------------------

    def _receive(self, data: bytes) -> None:
        if self._closed or self._gone or self._incoming_exc is not None or self._incoming_eof:
            return  # we stopped reading: the bytes are dropped, as by a kernel
        if self._receiver is None and self._reading and not self._pending:
            self._feed(memoryview(data))
            return
        self._pending.append(data)
        self._pending_size += len(data)
        self._schedule_flush()

    def _receive_eof(self) -> None:
        if self._closed or self._gone or self._incoming_exc is not None:
            return
        self._incoming_eof = True
        if self._receiver is None and self._reading and not self._pending:
            self._feed_eof()
        else:
            self._schedule_flush()

    def _receive_reset(self, exc: BaseException) -> None:
        if self._closed or self._gone or self._incoming_exc is not None:
            return
        self._incoming_exc = exc
        self._no_write = True
        self._gate.close(exc)
        self._drop_received()
        if self._receiver is None:
            self._rbuf.fail(exc)  # a reset drops what was not read yet
            self._feed_lost(exc)
        else:
            self._lose_later(exc)  # never inside the peer's reset() call

    # -- internals ---------------------------------------------------------------------

    def _send_eof(self) -> None:
        if not self._eof_sent:
            self._eof_sent = True
            assert self._peer is not None
            self._peer._receive_eof()

    def _lose_later(self, exc: BaseException | None) -> None:
        self._loss_scheduled = True
        self._loss_exc = exc
        self._schedule_flush()

    def _drop_received(self) -> None:
        self._pending.clear()
        self._pending_size = 0
        self._release_peer_writer()

    def _release_peer_writer(self) -> None:
        peer = self._peer
        if peer is not None and peer._gate.paused:
            if self._closed or self._queued() <= self._low_water:
                peer._resume_writing()

    def _schedule_flush(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        """Deliver what the reader can take now (runs from the event loop, like a socket)."""
        self._flush_scheduled = False
        if self._loss_scheduled:
            self._loss_scheduled = False
            self._feed_lost(self._loss_exc)
            return
        while self._pending and self._reading:
            chunk = self._pending.popleft()
            self._pending_size -= len(chunk)
            self._feed(memoryview(chunk))
            if self._closed or self._gone or self._loss_scheduled:
                return  # the receiver closed or reset us from inside the callback
        self._release_peer_writer()
        if self._incoming_eof and not self._pending and self._reading:
            self._feed_eof()


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


class _LoopbackTcp(StreamSocketConnection):
    """A loopback TCP connection for tests (the core's stream socket, no plugin)."""

    transport_name = "tcp"

    def _to_multiaddr(self, sockaddr: Any) -> Multiaddr | None:
        return Multiaddr(f"/ip4/{sockaddr[0]}/tcp/{sockaddr[1]}") if sockaddr else None

    def _setup_socket(self, sock: Any) -> None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


async def tcp_channel_pair() -> tuple[RawConnection, RawConnection]:
    """Two connected TCP connections over 127.0.0.1 (dialer first).

    The caller closes both connections.
    """
    loop = asyncio.get_running_loop()
    options = StreamSocketOptions()
    accepted: asyncio.Future[RawConnection] = loop.create_future()

    def on_conn(conn: RawConnection) -> None:
        if not accepted.done():
            accepted.set_result(conn)
        else:  # pragma: no cover - nobody else knows the port
            conn.reset()

    server = await listen_stream(
        lambda: _LoopbackTcp(options, is_initiator=False),
        on_conn,
        loop.create_server,
        "127.0.0.1",
        0,
    )
    try:
        port = server.sockets[0].getsockname()[1]
        conn = _LoopbackTcp(options, is_initiator=True)
        dialed = await dial_stream(conn, loop.create_connection, "127.0.0.1", port)
        try:
            inbound = await asyncio.wait_for(accepted, 10.0)
        except BaseException:
            dialed.reset()
            raise
    finally:
        server.close()
    return dialed, inbound
