"""Compliance suites for channels and transports: subclass, provide fixtures, run pytest.

Two classes:

* :class:`ChannelSuite` checks the :class:`~p2pkit.abc.Channel` contract on a connected
  pair.  Provide an async ``pair`` fixture yielding ``(initiator, responder)``; the
  suite closes nothing itself, so the fixture cleans up (see :func:`dispose`).
* :class:`TransportSuite` adds dialing and listening.  Provide ``transport`` (a fresh
  :class:`~p2pkit.abc.Transport`) and ``listen_addr`` (a multiaddr to listen on, port
  0 or equivalent); optionally ``blackhole_addr`` (an address whose dial hangs, for
  the timeout and cancellation tests; the default skips them).  Its ``pair`` fixture
  listens and dials, so every channel test also runs over the transport.  Optional
  hooks: ``refused_addrs`` (addresses of *other* transports that ``can_dial`` and
  ``can_listen`` must refuse; the default, :func:`default_refused_addrs`, derives
  them from ``listen_addr``) and ``new_transport`` (a factory of fresh instances, by
  default the transport's class called without arguments; override it if the
  constructor needs some).

Capability flags (class attributes, strict by default): ``signals_reset = False`` for a
transport that cannot tell its peer about a reset (the peer then sees EOF or a reset).

The transport checks that catch common plugin bugs are also plain functions
(``check_*``), so a plugin's own tests can run one directly: write() must wait under
backpressure, ``can_dial`` must not claim other transports' addresses, ``close()``
must close listeners, write() must not keep the caller's buffer, a listener must
report resolved addresses, a dial must time out on time and a cancelled one must leak
nothing.  The last two, and the address fixtures (:class:`AddressFixtures`), serve the
muxed-transport suite as well.

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
from typing import Any

import pytest
from multiaddr import Multiaddr

from p2pkit.abc import Channel, RawConnection, Transport
from p2pkit.errors import ConnectionClosed, DialError, StreamClosed
from p2pkit.network import BaseTransport, MuxedTransport

__all__ = [
    "STEP",
    "AddressFixtures",
    "ChannelSuite",
    "Collector",
    "TransportSuite",
    "check_can_dial_refuses",
    "check_cancel_dial_leaks_nothing",
    "check_close_closes_listeners",
    "check_dial_timeout",
    "check_listener_reports_resolved_addrs",
    "check_write_copies_caller_buffer",
    "check_write_waits_under_backpressure",
    "default_refused_addrs",
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

    signals_reset: bool = True
    """False for channels that cannot express a reset to the peer (it then sees EOF)."""

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
        try:
            async with asyncio.timeout(STEP):
                while True:  # a reset may still let a little data through first
                    if not await b.read():
                        if self.signals_reset:
                            raise AssertionError("peer saw EOF, not a reset")
                        await b.close()
                        break
        except ConnectionClosed:
            pass
        assert b.closed
        with pytest.raises(ConnectionClosed):
            b.write_nowait(b"z")
        await b.close()  # closing a dead connection is fine

    async def test_reset_is_seen_by_push_receiver(self, pair: tuple[Channel, Channel]) -> None:
        a, b = pair
        col = Collector()
        b.start_push(col)
        a.reset()
        if not self.signals_reset:
            await col.wait_for(lambda c: c.eof or bool(c.lost), "EOF or connection_lost")
            await b.close()
        await col.wait_for(lambda c: bool(c.lost), "connection_lost")
        assert len(col.lost) == 1
        if self.signals_reset:
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


# -- checks that catch broken transports (also usable one by one) -----------------------

_FOREIGN_ADDRS = (
    "/ip4/127.0.0.1/tcp/1",
    "/dns4/localhost/tcp/1",
    "/ip4/127.0.0.1/udp/1/quic-v1",
    "/ip4/127.0.0.1/udp/1/quic-v1/webtransport",
    "/ip6/::1/udp/1/webrtc-direct",
    "/ip4/127.0.0.1/tcp/1/ws",
    "/dns4/x/tcp/1/ws",
    "/dns/x/tcp/1/wss",
    "/ip4/127.0.0.1/tcp/1/tls/ws",
    "/ip4/127.0.0.1/tcp/1/p2p/12D3KooWGC6TvWhfapngX6wvJHMYvKpDMXPb3ZnCZ6dMoaMtimQ5/p2p-circuit",
    "/unix/x",
    "/memory/1",
)


def _last_protocol(addr: Multiaddr) -> str:
    names = [p.name for p in addr.protocols() if p.name != "p2p"]
    return names[-1] if names else ""


def default_refused_addrs(listen_addr: Multiaddr) -> list[Multiaddr]:
    """Addresses of other transports: those whose last protocol (``/p2p`` aside)
    differs from ``listen_addr``'s (a TCP transport must refuse ``.../tcp/1/ws`` and
    ``/unix/x``; a Unix socket transport must refuse ``/ip4/.../tcp/1``)."""
    own = _last_protocol(listen_addr)
    out = []
    for text in _FOREIGN_ADDRS:
        addr = Multiaddr(text)
        if _last_protocol(addr) != own:
            out.append(addr)
    return out


def check_can_dial_refuses(transport: BaseTransport, refused: list[Multiaddr]) -> None:
    """``can_dial``/``can_listen`` must not claim another transport's addresses: the
    host picks the first transport that claims an address, so a greedy one shadows
    the right one."""
    claimed = [str(a) for a in refused if transport.can_dial(a)]
    assert not claimed, f"can_dial claims other transports' addresses: {claimed}"
    claimed = [str(a) for a in refused if transport.can_listen(a)]
    assert not claimed, f"can_listen claims other transports' addresses: {claimed}"


async def check_dial_timeout(
    transport: Transport | MuxedTransport,
    blackhole_addr: Multiaddr | None,
    discard: Callable[[Any], None],
) -> None:
    """A dial to ``blackhole_addr`` (skipped when None) fails with a DialError that says
    "timed out" once its ``timeout`` has passed, not much later; ``discard`` cleans up
    a connection the dial should not have made."""
    if blackhole_addr is None:
        pytest.skip("no blackhole_addr fixture for this transport")
    start = time.monotonic()
    with pytest.raises(DialError) as info:
        async with asyncio.timeout(STEP):
            discard(await transport.dial(blackhole_addr, timeout=0.3))
    elapsed = time.monotonic() - start
    assert 0.25 <= elapsed < 2.0, f"dial timeout took {elapsed:.2f}s (asked 0.3 s)"
    assert "timed out" in str(info.value) or "timeout" in str(info.value).lower()
    await transport.close()


async def check_cancel_dial_leaks_nothing(
    transport: Transport | MuxedTransport, blackhole_addr: Multiaddr | None
) -> None:
    """Cancelled dials to ``blackhole_addr`` (skipped when None) raise CancelledError
    and leave no socket behind (an unclosed one raises ResourceWarning at the garbage
    collection, an error under the suites' warning filters)."""
    if blackhole_addr is None:
        pytest.skip("no blackhole_addr fixture for this transport")
    tasks = [asyncio.ensure_future(transport.dial(blackhole_addr, timeout=STEP)) for _ in "ab"]
    await asyncio.sleep(0.05)
    for task in tasks:
        task.cancel()
    for task in tasks:
        with pytest.raises(asyncio.CancelledError):
            await task
    await asyncio.sleep(0.01)
    gc.collect()
    await transport.close()


async def check_listener_reports_resolved_addrs(
    transport: Transport, listen_addr: Multiaddr
) -> None:
    """A listener reports at least one address, with the port actually bound (never
    the ``0`` it was asked for), and each one is dialable by this transport."""
    listener = await transport.listen(listen_addr, lambda c: c.reset())
    try:
        addrs = list(listener.addrs)
        assert addrs, "listener reports no address"
        for addr in addrs:
            for proto, value in addr.items():
                if proto.name in ("tcp", "udp", "sctp", "dccp"):
                    assert value not in (None, "0"), f"unresolved port in {addr}"
            assert transport.can_dial(addr), f"cannot dial its own listen address {addr}"
    finally:
        await listener.close()
        await transport.close()


async def check_write_waits_under_backpressure(
    transport: Transport, listen_addr: Multiaddr, *, limit: int = 64 << 20
) -> None:
    """Against a peer that never reads, ``await write()`` must eventually block.

    Writes 1 MiB at a time; a write pending for 0.5 s counts as blocked.  A transport
    whose write() never waits lets one slow peer take all the memory: it fails once
    ``limit`` bytes were accepted (bounded in time by :data:`STEP` as well).
    """
    conns: list[RawConnection] = []
    accepted: asyncio.Queue[RawConnection] = asyncio.Queue()
    listener = await transport.listen(listen_addr, _record(conns, accepted))
    dialed: RawConnection | None = None
    try:
        dialed = await transport.dial(listener.addrs[0], timeout=STEP)
        await asyncio.wait_for(accepted.get(), STEP)  # accepted, and never read
        chunk = bytes(1 << 20)
        written = 0
        deadline = time.monotonic() + STEP
        while True:
            if written >= limit or time.monotonic() > deadline:
                raise AssertionError(
                    f"write() accepted {written >> 20} MiB from a peer that does not read "
                    "without ever waiting: no backpressure"
                )
            try:
                await asyncio.wait_for(dialed.write(chunk), 0.5)
            except TimeoutError:
                return  # blocked: the peer's window and the buffers are full
            written += len(chunk)
    finally:
        await dispose(*([dialed] if dialed else []), *conns)
        await listener.close()
        await transport.close()


async def check_write_copies_caller_buffer(
    transport: Transport, listen_addr: Multiaddr, *, size: int = 4 << 20
) -> None:
    """After ``await write(buf)`` returns the caller may reuse ``buf``: the peer must
    receive the bytes as they were at the call (a transport that queues a reference
    to a ``bytearray`` sends whatever the caller wrote into it later)."""
    a, b = await open_pair(transport, listen_addr)
    try:
        original = _pattern(size, 7)
        reader = asyncio.ensure_future(read_all(b))
        buf = bytearray(original)
        for i in range(0, size, 1 << 20):
            piece = bytearray(original[i : i + (1 << 20)])
            await a.write(piece)
            piece[:] = bytes(len(piece))  # reuse the buffer right away
        await a.write(buf)
        buf[:] = bytes(len(buf))
        await a.close_write()
        got = await reader
        assert len(got) == 2 * size, f"peer received {len(got)} of {2 * size} bytes"
        assert got[:size] == original and got[size:] == original, (
            "the peer received bytes the caller wrote into its buffer after write() "
            "returned: write() kept a reference instead of copying"
        )
    finally:
        await dispose(a, b)
        await transport.close()


async def check_close_closes_listeners(
    transport: Transport, listen_addr: Multiaddr, dialer: Transport
) -> None:
    """``Transport.close()`` closes the listeners it opened: a later dial (from another
    transport instance, ``dialer``) fails."""
    conns: list[RawConnection] = []
    accepted: asyncio.Queue[RawConnection] = asyncio.Queue()
    listener = await transport.listen(listen_addr, _record(conns, accepted))
    addr = listener.addrs[0]
    try:
        first = await dialer.dial(addr, timeout=STEP)
        conns.append(first)
        await asyncio.wait_for(accepted.get(), STEP)
        await transport.close()
        await asyncio.sleep(0.01)
        late: RawConnection | None = None
        try:
            late = await dialer.dial(addr, timeout=STEP)
        except DialError:
            pass
        if late is not None:
            conns.append(late)
            raise AssertionError(f"{addr} still accepts connections after Transport.close()")
    finally:
        await dispose(*conns)
        await listener.close()
        await transport.close()
        await dialer.close()


# -- the transport contract ------------------------------------------------------------


class AddressFixtures:
    """The address fixtures of both transport suites (this one and
    :class:`~p2pkit.testing.muxed_transport_suite.MuxedTransportSuite`)."""

    @pytest.fixture
    def listen_addr(self) -> Multiaddr:
        raise NotImplementedError("provide a `listen_addr` fixture")

    @pytest.fixture
    def blackhole_addr(self) -> Multiaddr | None:
        """An address whose dial never completes (None: skip the timeout tests)."""
        return None

    @pytest.fixture
    def refused_addrs(self, listen_addr: Multiaddr) -> list[Multiaddr]:
        """Addresses of other transports this one must not claim."""
        return default_refused_addrs(listen_addr)


class TransportSuite(AddressFixtures, ChannelSuite):
    """Dialing and listening, plus every :class:`ChannelSuite` test over a real pair."""

    @pytest.fixture
    def transport(self) -> Transport:
        raise NotImplementedError("provide a `transport` fixture")

    @pytest.fixture
    def new_transport(self, transport: Transport) -> Callable[[], Transport]:
        """Fresh instances (a second dialer); override if the constructor needs arguments."""
        return type(transport)

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
        await check_dial_timeout(transport, blackhole_addr, RawConnection.reset)

    async def test_cancel_dial_leaks_nothing(
        self, transport: Transport, blackhole_addr: Multiaddr | None
    ) -> None:
        await check_cancel_dial_leaks_nothing(transport, blackhole_addr)

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

    async def test_write_waits_under_backpressure(
        self, transport: Transport, listen_addr: Multiaddr
    ) -> None:
        await check_write_waits_under_backpressure(transport, listen_addr)

    async def test_can_dial_refuses_other_transports(
        self, transport: Transport, refused_addrs: list[Multiaddr]
    ) -> None:
        check_can_dial_refuses(transport, refused_addrs)
        await transport.close()

    async def test_close_closes_listeners(
        self,
        transport: Transport,
        listen_addr: Multiaddr,
        new_transport: Callable[[], Transport],
    ) -> None:
        await check_close_closes_listeners(transport, listen_addr, new_transport())

    async def test_write_copies_caller_buffer(
        self, transport: Transport, listen_addr: Multiaddr
    ) -> None:
        await check_write_copies_caller_buffer(transport, listen_addr)

    async def test_listener_reports_resolved_addrs(
        self, transport: Transport, listen_addr: Multiaddr
    ) -> None:
        await check_listener_reports_resolved_addrs(transport, listen_addr)
