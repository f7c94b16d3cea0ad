"""One non-blocking UDP socket on the event loop, read in batches.

Why not asyncio's datagram transport: it reads one datagram per loop iteration (into a
fresh 256 KiB buffer), so a burst of N datagrams costs N iterations, and the QUIC
session behind it transmits (builds ACKs, more data) N times.  Here one readiness
callback drains up to :data:`BATCH` datagrams, the session processes them all, and its
transmit, scheduled with ``call_soon``, runs once after the batch: fewer ACK-only
packets and fewer passes through aioquic's packet builder.

Sending is ``sendto`` straight away; only when the kernel's send buffer is full
(``EAGAIN``) are datagrams queued (at most :data:`MAX_QUEUED`, beyond which they are
dropped, as the network would: QUIC retransmits) until the socket is writable again.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections import deque
from collections.abc import Callable
from typing import Any

from p2pkit.logs import get_logger

log = get_logger("quic")

BATCH = 128
"""Datagrams read per readiness callback at most (others wait for the next turn)."""
MAX_DATAGRAM = 65536
MAX_QUEUED = 4096
SOCKET_BUFFER = 4 << 20
"""SO_RCVBUF / SO_SNDBUF asked for (the kernel caps them): bursts of large datagrams."""

OnDatagram = Callable[[bytes, Any], None]


class UdpSocket:
    """See the module docstring."""

    def __init__(self, sock: socket.socket, on_datagram: OnDatagram) -> None:
        self._sock = sock
        self._fd = sock.fileno()
        self._on_datagram = on_datagram
        self._loop = asyncio.get_running_loop()
        self._queue: deque[tuple[bytes, Any]] = deque()
        self.sockname: Any = sock.getsockname()
        self.closed = False
        self._loop.add_reader(self._fd, self._read_ready)

    @classmethod
    def bind(
        cls, host: str, port: int, family: socket.AddressFamily, on_datagram: OnDatagram
    ) -> UdpSocket:
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            for opt in (socket.SO_RCVBUF, socket.SO_SNDBUF):
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, opt, SOCKET_BUFFER)
            sock.bind((host, port))
            sock.setblocking(False)
            return cls(sock, on_datagram)
        except BaseException:
            sock.close()
            raise

    def _read_ready(self) -> None:
        recvfrom = self._sock.recvfrom
        for _ in range(BATCH):
            if self.closed:
                return
            try:
                data, addr = recvfrom(MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                # ICMP errors (port unreachable...) about one peer must not end the
                # others: connections to that peer time out by themselves.
                log.debug("UDP error on %s: %s", self.sockname, exc)
                continue
            try:
                self._on_datagram(data, addr)
            except Exception:  # one datagram's failure must not cost the batch or socket
                log.exception("QUIC datagram from %s could not be handled", addr)

    def send_many(self, datagrams: list[tuple[bytes, Any]]) -> None:
        if self.closed:
            return
        if self._queue:
            self._enqueue(datagrams)
            return
        sendto = self._sock.sendto
        for i, (data, addr) in enumerate(datagrams):
            try:
                sendto(data, addr)
            except (BlockingIOError, InterruptedError):
                self._enqueue(datagrams[i:])
                self._loop.add_writer(self._fd, self._write_ready)
                return
            except OSError as exc:
                log.debug("UDP send from %s to %s failed: %s", self.sockname, addr, exc)

    def _enqueue(self, datagrams: list[tuple[bytes, Any]]) -> None:
        room = MAX_QUEUED - len(self._queue)
        self._queue.extend(datagrams[: max(room, 0)])

    def _write_ready(self) -> None:
        queue = self._queue
        while queue:
            data, addr = queue[0]
            try:
                self._sock.sendto(data, addr)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.debug("UDP send from %s to %s failed: %s", self.sockname, addr, exc)
            queue.popleft()
        self._loop.remove_writer(self._fd)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._loop.remove_reader(self._fd)
        if self._queue:
            self._queue.clear()
            self._loop.remove_writer(self._fd)
        self._sock.close()
