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

"Port unreachable": an unconnected UDP socket hears no ICMP error unless it asks
(Linux's ``IP_RECVERR`` / ``IPV6_RECVERR``), so a dial to a closed port waited for its
whole timeout where TCP is refused at once.  With it on, each such error is read off the
socket's error queue with the address the datagram was sent to, and ``on_unreachable``
is told (the endpoint fails a dial still in its handshake to that address, as TCP fails
on a reset; established connections ignore it: RFC 9000 lets ICMP be spoofed).  The
error queue is drained whenever a wakeup brings no datagram, so a pending error never
leaves the socket readable in a loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
import struct
import sys
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
OnUnreachable = Callable[[Any], None]

_RECVERR = (
    {socket.AF_INET: (socket.IPPROTO_IP, 11), socket.AF_INET6: (socket.IPPROTO_IPV6, 25)}
    if sys.platform == "linux"
    else {}
)
"""``IP_RECVERR`` / ``IPV6_RECVERR`` (Linux's values; Python does not name them)."""
_EXTENDED_ERR = struct.Struct("=IBBBBII")
"""``struct sock_extended_err``: errno, origin, ICMP type and code, pad, info, data."""


class UdpSocket:
    """See the module docstring."""

    def __init__(
        self, sock: socket.socket, on_datagram: OnDatagram, on_unreachable: OnUnreachable | None
    ) -> None:
        self._sock = sock
        self._fd = sock.fileno()
        self._on_datagram = on_datagram
        self._on_unreachable = on_unreachable
        self._errors = on_unreachable is not None and sock.family in _RECVERR
        self._loop = asyncio.get_running_loop()
        self._queue: deque[tuple[bytes, Any]] = deque()
        self.sockname: Any = sock.getsockname()
        self.closed = False
        self._loop.add_reader(self._fd, self._read_ready)

    @classmethod
    def bind(
        cls,
        host: str,
        port: int,
        family: socket.AddressFamily,
        on_datagram: OnDatagram,
        on_unreachable: OnUnreachable | None = None,
    ) -> UdpSocket:
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            for opt in (socket.SO_RCVBUF, socket.SO_SNDBUF):
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, opt, SOCKET_BUFFER)
            if on_unreachable is not None and family in _RECVERR:
                level, option = _RECVERR[family]
                try:
                    sock.setsockopt(level, option, 1)
                except OSError:
                    on_unreachable = None  # not this kernel: dials time out instead
            sock.bind((host, port))
            sock.setblocking(False)
            return cls(sock, on_datagram, on_unreachable)
        except BaseException:
            sock.close()
            raise

    def _read_ready(self) -> None:
        recvfrom = self._sock.recvfrom
        for i in range(BATCH):
            if self.closed:
                return
            try:
                data, addr = recvfrom(MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                if i == 0 and self._errors:
                    self._drain_errors()  # woken by an error alone (see the docstring)
                return
            except OSError as exc:
                # An ICMP error about one peer must not end the others: only a dial in
                # its handshake to that address is failed (_drain_errors).
                log.debug("UDP error on %s: %s", self.sockname, exc)
                if self._errors:
                    self._drain_errors()
                continue
            try:
                self._on_datagram(data, addr)
            except Exception:  # one datagram's failure must not cost the batch or socket
                log.exception("QUIC datagram from %s could not be handled", addr)

    def _drain_errors(self) -> None:
        """Read the socket's error queue (at most BATCH entries), telling
        ``on_unreachable`` of each "port unreachable" with the address it is about."""
        recvmsg = self._sock.recvmsg
        for _ in range(BATCH):
            try:
                _, ancdata, _, addr = recvmsg(1, 512, socket.MSG_ERRQUEUE)
            except OSError:  # EAGAIN: the queue is empty
                return
            for _level, _type, raw in ancdata:
                if len(raw) < _EXTENDED_ERR.size:
                    continue
                if _EXTENDED_ERR.unpack_from(raw)[0] == errno.ECONNREFUSED and addr:
                    assert self._on_unreachable is not None
                    try:
                        self._on_unreachable(addr)
                    except Exception:  # one address's failure must not stop the drain
                        log.exception("QUIC: handling unreachable %s failed", addr)

    def send_many(self, datagrams: list[tuple[bytes, Any]]) -> None:
        if self.closed:
            return
        if self._queue:
            self._enqueue(datagrams)
            return
        sendto = self._sock.sendto
        for i, (data, addr) in enumerate(datagrams):
            try:
                try:
                    sendto(data, addr)
                except ConnectionRefusedError:
                    # An ICMP error about some earlier datagram, reported by this call
                    # (and cleared by it): this datagram did not go; send it again.
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
                try:
                    self._sock.sendto(data, addr)
                except ConnectionRefusedError:  # an earlier ICMP error: see send_many
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
