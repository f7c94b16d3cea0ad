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

This module is the public entry and holds the transport half (:class:`AddressFixtures`,
:class:`TransportSuite`); the rest lives in sibling modules and is re-exported here:
the helpers in :mod:`p2pkit.testing.transport_helpers`, the channel contract in
:mod:`p2pkit.testing.channel_suite`, the ``check_*`` functions in
:mod:`p2pkit.testing.transport_checks`.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator, Callable

import pytest
from multiaddr import Multiaddr

from p2pkit.abc import Channel, RawConnection, Transport
from p2pkit.errors import DialError
from p2pkit.testing.channel_suite import ChannelSuite
from p2pkit.testing.channel_suite import _fill_until_paused as _fill_until_paused
from p2pkit.testing.transport_checks import _FOREIGN_ADDRS as _FOREIGN_ADDRS
from p2pkit.testing.transport_checks import _last_protocol as _last_protocol
from p2pkit.testing.transport_checks import (
    check_can_dial_refuses,
    check_cancel_dial_leaks_nothing,
    check_close_closes_listeners,
    check_dial_timeout,
    check_listener_reports_resolved_addrs,
    check_write_copies_caller_buffer,
    check_write_waits_under_backpressure,
    default_refused_addrs,
)
from p2pkit.testing.transport_helpers import (
    STEP,
    Collector,
    dispose,
    open_pair,
    read_all,
    read_n,
)
from p2pkit.testing.transport_helpers import _pattern as _pattern
from p2pkit.testing.transport_helpers import _record as _record

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
