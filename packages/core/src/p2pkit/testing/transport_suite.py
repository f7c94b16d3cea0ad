"""Compliance suites for channels and transports: subclass, provide fixtures, run pytest.

Two classes:

* :class:`ChannelSuite` checks the :class:`~p2pkit.abc.Channel` contract on a connected
  pair.  Provide an async ``pair`` fixture yielding ``(initiator, responder)``; the
  suite closes nothing itself, so the fixture cleans up (see :func:`dispose`).
* :class:`TransportSuite` adds dialing and listening.  Provide ``transport`` (a fresh
  :class:`~p2pkit.abc.Transport`) and ``listen_addr`` (a multiaddr to listen on, port
  0 or equivalent); optionally ``blackhole_addr`` (an address whose dial hangs, for
  the timeout and cancellation tests; the default skips them).  Its ``pair`` fixture
  listens and dials, so every channel test also runs over the transport.

Example (this is how ``p2pkit-tcp`` runs it)::

    from p2pkit.testing.transport_suite import TransportSuite

    class TestTcpIPv4(TransportSuite):
        @pytest.fixture
        def transport(self) -> Transport:
            return TcpTransport()

        @pytest.fixture
        def listen_addr(self) -> Multiaddr:
            return Multiaddr("/ip4/127.0.0.1/tcp/0")

Scenarios follow go-libp2p's ``p2p/transport/testsuite`` and js-libp2p's
interface-compliance-tests (transport): echo, half-close, reset, close-with-data,
closed port, dial timeout, dial cancellation, listener close, concurrency, push mode,
backpressure.  Every wait is bounded (:data:`STEP`) so a broken implementation fails
instead of hanging.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hashlib
import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

import pytest

from p2pkit.abc import Channel, RawConnection, Transport
from p2pkit.errors import ConnectionClosed, DialError, StreamClosed

if TYPE_CHECKING:
    from multiaddr import Multiaddr

__all__ = [
    "STEP",
    "ChannelSuite",
    "Collector",
    "TransportSuite",
    "dispose",
    "open_pair",
    "read_all",
    "read_n",
]

STEP = 10.0
"""Upper bound (seconds) of any single wait in the suites."""


# -- helpers (public: handy in a plugin's own tests) -----------------------------------


class Collector:
    """A push-mode :class:`~p2pkit.abc.Receiver` that records what it gets."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.eof = False
        self.eof_count = 0
        self.lost: list[BaseException | None] = []
        self._changed = asyncio.Event()

    def data_received(self, data: memoryview) -> None:
        self.data += data  # copy: ``data`` is only valid during the call
        self._changed.set()

    def eof_received(self) -> None:
        self.eof = True
        self.eof_count += 1
        self._changed.set()

    def connection_lost(self, exc: BaseException | None) -> None:
        self.lost.append(exc)
        self._changed.set()

    async def wait_for(self, predicate: Callable[[Collector], bool], what: str) -> None:
        """Wait (at most :data:`STEP`) until ``predicate(self)`` holds."""
        try:
            async with asyncio.timeout(STEP):
                while not predicate(self):
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            raise AssertionError(
                f"timed out waiting for {what} (have {len(self.data)} bytes, "
                f"eof={self.eof}, lost={self.lost})"
            ) from None


async def read_all(chan: Channel, limit: int = 64 << 20) -> bytes:
    """Read until EOF (bounded in size and in time)."""
    parts: list[bytes] = []
    got = 0
    async with asyncio.timeout(STEP):
        while True:
            chunk = await chan.read()
            if not chunk:
                return b"".join(parts)
            parts.append(chunk)
            got += len(chunk)
            if got > limit:
                raise AssertionError(f"more than {limit} bytes before EOF")


async def read_n(chan: Channel, n: int) -> bytes:
    async with asyncio.timeout(STEP):
        return await chan.readexactly(n)


async def dispose(*chans: Channel) -> None:
    """Tear connections down without waiting on peers (reset), then let callbacks run."""
    for c in chans:
        c.reset()
    await asyncio.sleep(0.01)  # abort() closes sockets from a loop callback


async def open_pair(
    transport: Transport, listen_addr: Multiaddr
) -> tuple[RawConnection, RawConnection]:
    """Listen, dial the reported address, return ``(dialed, accepted)``; listener closed."""
    accepted: asyncio.Queue[RawConnection] = asyncio.Queue()
    listener = await transport.listen(listen_addr, accepted.put_nowait)
    try:
        async with asyncio.timeout(STEP):
            dialed = await transport.dial(listener.addrs[0])
            try:
                inbound = await accepted.get()
            except BaseException:
                dialed.reset()
                raise
    finally:
        await listener.close()
    return dialed, inbound


def _pattern(n: int, seed: int = 0) -> bytes:
    """``n`` deterministic pseudo-random bytes (so corruption and reordering show)."""
    out = bytearray()
    counter = 0
    while len(out) < n:
        out += hashlib.sha256(f"{seed}:{counter}".encode()).digest() * 64
        counter += 1
    return bytes(out[:n])


# -- the channel contract --------------------------------------------------------------


class ChannelSuite:
    """The :class:`~p2pkit.abc.Channel` contract on a connected pair."""

    peer_sees_reset = True
    """False for a transport that has no way to tell the peer about an abort (Unix
    domain sockets: closing is always an orderly EOF to the peer).  The peer of a reset
    connection must then see EOF or an error; the local side is checked alike."""

    @pytest.fixture
    async def pair(self) -> AsyncIterator[tuple[Channel, Channel]]:
        raise NotImplementedError("provide a `pair` fixture yielding (initiator, responder)")
        yield  # pragma: no cover

    async def test_roles(self, pair: tuple[Channel, Channel]) -> None:
        a, b = pair
        assert a.is_initiator is True
        assert b.is_initiator is False
        assert not a.closed and not b.closed

    async def test_bidirectional_echo_4mib(self, pair: tuple[Channel, Channel]) -> None:
        a, b = pair
        up, down = _pattern(4 << 20, 1), _pattern(4 << 20, 2)

        async def send(chan: Channel, data: bytes) -> None:
            view = memoryview(data)
            for i in range(0, len(data), 256 << 10):
                await chan.write(view[i : i + (256 << 10)])
            await chan.close_write()

        async with asyncio.timeout(STEP * 2):
            _, _, got_b, got_a = await asyncio.gather(
                send(a, up), send(b, down), read_all(b), read_all(a)
            )
        assert hashlib.sha256(got_b).digest() == hashlib.sha256(up).digest()
        assert hashlib.sha256(got_a).digest() == hashlib.sha256(down).digest()

    async def test_many_small_writes(self, pair: tuple[Channel, Channel]) -> None:
        a, b = pair
        data = _pattern(100_000, 3)
        pieces = []
        i = 0
        while i < len(data):
            size = 1 + (i * 7919) % 97
            pieces.append(data[i : i + size])
            i += size

        async def send() -> None:
            for p in pieces:
                await a.write(p)
            await a.close_write()

        got, _ = await asyncio.gather(read_all(b), send())
        assert got == data

    async def test_write_accepts_bytearray_and_memoryview(
        self, pair: tuple[Channel, Channel]
    ) -> None:
        a, b = pair
        buf = bytearray(b"mutable")
        await a.write(buf)
        buf[:] = b"XXXXXXX"  # allowed: write() has returned
        await a.write(memoryview(b"--view"))
        await a.close_write()
        assert await read_all(b) == b"mutable--view"

    async def test_half_close_both_directions(self, pair: tuple[Channel, Channel]) -> None:
        a, b = pair
        await a.write(b"request")
        await a.close_write()
        await a.close_write()  # idempotent
        with pytest.raises(StreamClosed):
            await a.write(b"late")
        assert await read_all(b) == b"request"
        assert await b.read() == b""  # EOF stays EOF
        # The other direction still works after our half-close.
        await b.write(b"response")
        assert await read_n(a, 8) == b"response"
        await b.close_write()
        assert await read_all(a) == b""

    async def test_unread(self, pair: tuple[Channel, Channel]) -> None:
        a, b = pair
        await a.write(b"header|body")
        got = await read_n(b, 11)
        b.unread(got[7:])
        assert await read_n(b, 4) == b"body"

    async def test_reset_is_seen_by_peer(self, pair: tuple[Channel, Channel]) -> None:
        a, b = pair
        await a.write(b"x")
        assert await read_n(b, 1) == b"x"
        a.reset()
        a.reset()  # idempotent, never raises
        assert a.closed
        with pytest.raises(ConnectionClosed):
            await a.read()
        with pytest.raises(ConnectionClosed):
            a.write_nowait(b"y")
        with pytest.raises(ConnectionClosed):
            async with asyncio.timeout(STEP):
                while True:  # a reset may still let a little data through first
                    if not await b.read():
                        if not self.peer_sees_reset:
                            raise ConnectionClosed("EOF: this transport cannot signal a reset")
                        raise AssertionError("peer saw EOF, not a reset")
        if self.peer_sees_reset:
            assert b.closed
            with pytest.raises(ConnectionClosed):
                b.write_nowait(b"z")
        await b.close()  # closing a dead connection is fine

    async def test_reset_is_seen_by_push_receiver(self, pair: tuple[Channel, Channel]) -> None:
        a, b = pair
        col = Collector()
        b.start_push(col)
        a.reset()
        if not self.peer_sees_reset:
            await col.wait_for(lambda c: c.eof or bool(c.lost), "EOF or connection_lost")
            return
        await col.wait_for(lambda c: bool(c.lost), "connection_lost")
        assert len(col.lost) == 1
        assert isinstance(col.lost[0], ConnectionError)

    async def test_close_delivers_queued_data(self, pair: tuple[Channel, Channel]) -> None:
        a, b = pair
        data = _pattern(3 << 20, 4)
        reader = asyncio.ensure_future(read_all(b))
        a.write_nowait(data)  # queued, not drained
        async with asyncio.timeout(STEP):
            await a.close()
        await a.close()  # idempotent
        assert a.closed
        with pytest.raises(ConnectionClosed):
            a.write_nowait(b"late")
        got = await reader
        assert len(got) == len(data) and got == data

    async def test_drain_without_backlog_returns(self, pair: tuple[Channel, Channel]) -> None:
        a, _ = pair
        a.write_nowait(b"small")
        async with asyncio.timeout(STEP):
            await a.drain()
        await a.close()
        with pytest.raises(ConnectionClosed):
            await a.drain()

    async def test_push_after_pull_reads_rest_in_order(self, pair: tuple[Channel, Channel]) -> None:
        a, b = pair
        data = _pattern(2 << 20, 5)
        await a.write(data[:1000])
        assert await read_n(b, 100) == data[:100]
        # Let the rest of the first write arrive and sit in b's pull buffer.
        await asyncio.sleep(0.01)
        col = Collector()
        b.start_push(col)
        with pytest.raises(RuntimeError):
            await b.read()

        async def send_rest() -> None:
            view = memoryview(data)
            for i in range(1000, len(data), 64 << 10):
                await a.write(view[i : i + (64 << 10)])
            await a.close_write()

        await send_rest()
        await col.wait_for(lambda c: c.eof, "EOF in push mode")
        assert bytes(col.data) == data[100:]
        assert not col.lost

    async def test_push_delivers_eof_that_already_happened(
        self, pair: tuple[Channel, Channel]
    ) -> None:
        a, b = pair
        await a.write(b"all of it")
        await a.close_write()
        assert await read_n(b, 3) == b"all"
        await asyncio.sleep(0.01)
        col = Collector()
        b.start_push(col)
        await col.wait_for(lambda c: c.eof, "EOF")
        assert bytes(col.data) == b" of it"

    async def test_push_pause_and_resume_reading(self, pair: tuple[Channel, Channel]) -> None:
        a, b = pair
        col = Collector()
        b.start_push(col)
        b.pause_reading()
        await a.write(b"held back")
        await asyncio.sleep(0.05)
        assert bytes(col.data) == b""
        b.resume_reading()
        await col.wait_for(lambda c: len(c.data) == 9, "data after resume_reading")
        assert bytes(col.data) == b"held back"

    async def test_eof_and_loss_are_delivered_once(self, pair: tuple[Channel, Channel]) -> None:
        a, b = pair
        col = Collector()
        b.start_push(col)
        await a.close_write()
        await col.wait_for(lambda c: c.eof, "EOF")
        b.pause_reading()
        b.resume_reading()
        await b.write(b"still writable after EOF")
        assert await read_n(a, 24) == b"still writable after EOF"
        await b.close()
        await col.wait_for(lambda c: bool(c.lost), "connection_lost after close()")
        await asyncio.sleep(0.02)
        assert col.eof_count == 1
        assert col.lost == [None]

    async def test_backpressure_pull_reader(self, pair: tuple[Channel, Channel]) -> None:
        a, b = pair
        written = await _fill_until_paused(a)
        drained = asyncio.ensure_future(a.drain())
        await asyncio.sleep(0.05)
        assert not drained.done(), "drain() returned while the peer was not reading"
        got = await read_n(b, written)
        assert len(got) == written
        async with asyncio.timeout(STEP):
            await drained
        assert not a.write_paused

    async def test_backpressure_push_reader_paused(self, pair: tuple[Channel, Channel]) -> None:
        a, b = pair
        col = Collector()
        b.start_push(col)
        b.pause_reading()
        written = await _fill_until_paused(a)
        drained = asyncio.ensure_future(a.drain())
        await asyncio.sleep(0.05)
        assert not drained.done()
        b.resume_reading()
        await col.wait_for(lambda c: len(c.data) >= written, "all bytes after resume")
        async with asyncio.timeout(STEP):
            await drained


def _record(
    conns: list[RawConnection], queue: asyncio.Queue[RawConnection]
) -> Callable[[RawConnection], None]:
    """A connection handler that keeps every connection (for cleanup) and queues it."""

    def handler(conn: RawConnection) -> None:
        conns.append(conn)
        queue.put_nowait(conn)

    return handler


async def _fill_until_paused(chan: Channel, limit: int = 256 << 20) -> int:
    """``write_nowait`` until ``write_paused`` stays True; returns the bytes written.

    Paused once is not enough: the kernel's socket buffers (auto-tuned, several MiB)
    may still take bytes, and the loop then resumes writing by itself.  Fill until
    the writer is still paused after the loop had time to move bytes into the kernel.
    """
    chunk = bytes(64 << 10)
    written = 0
    deadline = time.monotonic() + STEP
    while True:
        while not chan.write_paused:
            if written >= limit or time.monotonic() > deadline:
                raise AssertionError(f"write_paused never turned True after {written} bytes")
            chan.write_nowait(chunk)
            written += len(chunk)
            if written % (1 << 20) == 0:
                await asyncio.sleep(0)  # let the socket move bytes into the kernel
        await asyncio.sleep(0.1)
        if chan.write_paused:
            return written


# -- the transport contract ------------------------------------------------------------


class TransportSuite(ChannelSuite):
    """Dialing and listening, plus every :class:`ChannelSuite` test over a real pair."""

    @pytest.fixture
    def transport(self) -> Transport:
        raise NotImplementedError("provide a `transport` fixture")

    @pytest.fixture
    def listen_addr(self) -> Multiaddr:
        raise NotImplementedError("provide a `listen_addr` fixture")

    @pytest.fixture
    def blackhole_addr(self) -> Multiaddr | None:
        """An address whose dial never completes (None: skip the timeout tests)."""
        return None

    @pytest.fixture
    async def pair(
        self, transport: Transport, listen_addr: Multiaddr
    ) -> AsyncIterator[tuple[Channel, Channel]]:
        a, b = await open_pair(transport, listen_addr)
        try:
            yield a, b
        finally:
            await dispose(a, b)
            await transport.close()

    async def test_listen_reports_dialable_address(
        self, transport: Transport, listen_addr: Multiaddr
    ) -> None:
        assert transport.can_listen(listen_addr)
        conns: list[RawConnection] = []
        accepted: asyncio.Queue[RawConnection] = asyncio.Queue()
        listener = await transport.listen(listen_addr, _record(conns, accepted))
        try:
            assert listener.addrs, "listener reports no address"
            addr = listener.addrs[0]
            assert transport.can_dial(addr)
            dialed = await transport.dial(addr, timeout=STEP)
            try:
                inbound = await asyncio.wait_for(accepted.get(), STEP)
                assert dialed.is_initiator and not inbound.is_initiator
                assert dialed.transport_name == inbound.transport_name
                if dialed.remote_addr is not None:
                    assert dialed.remote_addr == addr
                if dialed.local_addr is not None and inbound.remote_addr is not None:
                    assert inbound.remote_addr == dialed.local_addr
            finally:
                await dispose(dialed, *conns)
        finally:
            await listener.close()
            await transport.close()

    async def test_dial_closed_port_fails(
        self, transport: Transport, listen_addr: Multiaddr
    ) -> None:
        listener = await transport.listen(listen_addr, lambda c: c.reset())
        addr = listener.addrs[0]
        await listener.close()
        await asyncio.sleep(0.01)
        with pytest.raises(DialError):
            async with asyncio.timeout(STEP):
                conn = await transport.dial(addr)
                conn.reset()  # pragma: no cover - only if the dial wrongly succeeded
        await transport.close()

    async def test_listener_close_stops_accepting(
        self, transport: Transport, listen_addr: Multiaddr
    ) -> None:
        conns: list[RawConnection] = []
        accepted: asyncio.Queue[RawConnection] = asyncio.Queue()
        listener = await transport.listen(listen_addr, _record(conns, accepted))
        addr = listener.addrs[0]
        first = await transport.dial(addr, timeout=STEP)
        await asyncio.wait_for(accepted.get(), STEP)
        await listener.close()
        await listener.close()  # idempotent
        await asyncio.sleep(0.01)
        with pytest.raises(DialError):
            late = await transport.dial(addr, timeout=STEP)
            late.reset()  # pragma: no cover
        # Connections accepted before the close live on.
        await first.write(b"still here")
        assert await read_n(conns[0], 10) == b"still here"
        await dispose(first, *conns)
        await transport.close()

    async def test_handler_error_does_not_stop_listener(
        self, transport: Transport, listen_addr: Multiaddr
    ) -> None:
        conns: list[RawConnection] = []
        accepted: asyncio.Queue[RawConnection] = asyncio.Queue()
        record = _record(conns, accepted)
        calls = 0

        def handler(conn: RawConnection) -> None:
            nonlocal calls
            calls += 1
            if calls == 1:
                raise RuntimeError("handler bug (expected in this test)")
            record(conn)

        listener = await transport.listen(listen_addr, handler)
        try:
            addr = listener.addrs[0]
            bad = await transport.dial(addr, timeout=STEP)
            good = await transport.dial(addr, timeout=STEP)
            await good.write(b"ok")
            inbound = await asyncio.wait_for(accepted.get(), STEP)
            assert await read_n(inbound, 2) == b"ok"
            await dispose(bad, good, *conns)
        finally:
            await listener.close()
            await transport.close()

    async def test_concurrent_connections(
        self, transport: Transport, listen_addr: Multiaddr
    ) -> None:
        n = 10

        async def echo(conn: RawConnection) -> None:
            data = await read_all(conn)
            await conn.write(data)
            await conn.close()

        tasks: set[asyncio.Task[None]] = set()

        def handler(conn: RawConnection) -> None:
            task = asyncio.ensure_future(echo(conn))
            tasks.add(task)

        listener = await transport.listen(listen_addr, handler)
        addr = listener.addrs[0]

        async def client(i: int) -> None:
            conn = await transport.dial(addr, timeout=STEP)
            payload = _pattern(50_000 + i, 100 + i)
            await conn.write(payload)
            await conn.close_write()
            assert await read_all(conn) == payload
            await conn.close()

        try:
            async with asyncio.timeout(STEP * 2):
                await asyncio.gather(*(client(i) for i in range(n)))
                await asyncio.gather(*tasks)
            assert len(tasks) == n
        finally:
            await listener.close()
            await transport.close()

    async def test_dial_timeout(
        self, transport: Transport, blackhole_addr: Multiaddr | None
    ) -> None:
        if blackhole_addr is None:
            pytest.skip("no blackhole_addr fixture for this transport")
        start = time.monotonic()
        with pytest.raises(DialError) as info:
            async with asyncio.timeout(STEP):
                conn = await transport.dial(blackhole_addr, timeout=0.3)
                conn.reset()  # pragma: no cover
        elapsed = time.monotonic() - start
        assert 0.25 <= elapsed < 2.0, f"dial timeout took {elapsed:.2f}s (asked 0.3 s)"
        assert "timed out" in str(info.value) or "timeout" in str(info.value).lower()
        await transport.close()

    async def test_cancel_dial_leaks_nothing(
        self, transport: Transport, blackhole_addr: Multiaddr | None
    ) -> None:
        if blackhole_addr is None:
            pytest.skip("no blackhole_addr fixture for this transport")
        tasks = [asyncio.ensure_future(transport.dial(blackhole_addr, timeout=STEP))]
        tasks.append(asyncio.ensure_future(transport.dial(blackhole_addr, timeout=STEP)))
        await asyncio.sleep(0.05)
        tasks[0].cancel()
        tasks[1].cancel()
        for task in tasks:
            with pytest.raises(asyncio.CancelledError):
                await task
        # An unclosed socket would raise ResourceWarning here (warnings are errors).
        await asyncio.sleep(0.01)
        gc.collect()
        await transport.close()

    async def test_cancel_dial_immediately(
        self, transport: Transport, listen_addr: Multiaddr
    ) -> None:
        conns: list[RawConnection] = []
        listener = await transport.listen(listen_addr, conns.append)
        try:
            task = asyncio.ensure_future(transport.dial(listener.addrs[0], timeout=STEP))
            await asyncio.sleep(0)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                conn = await task
                conn.reset()  # the dial won the race: fine, just clean up
            await asyncio.sleep(0.05)
            gc.collect()
        finally:
            await dispose(*conns)
            await listener.close()
            await transport.close()
