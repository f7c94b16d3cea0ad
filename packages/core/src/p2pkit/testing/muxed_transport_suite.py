"""Compliance suite for transports that bring their own security and muxing.

A :class:`~p2pkit.network.MuxedTransport` (QUIC, WebTransport, WebRTC) yields
:class:`~p2pkit.network.MuxedTransportConnection` objects, not channels, so the channel
half of :class:`~p2pkit.testing.transport_suite.TransportSuite` does not apply.
:class:`MuxedTransportSuite` runs instead:

* every :class:`~p2pkit.testing.muxer_suite.MuxerSuite` scenario on the two ends of one
  real connection made by the transport (its ``muxer_pair`` fixture listens and dials);
* the transport scenarios that do apply: the listener reports a dialable address, both
  ends report each other's identity and addresses, a listener close stops new
  connections and keeps the old ones, a handler error does not stop the listener,
  concurrent connections, dial timeout and cancellation (given a ``blackhole_addr``),
  ``can_dial`` refuses other transports' addresses, ``close()`` closes listeners.

Provide ``transport`` (a fresh instance) and ``listen_addr``; optionally
``blackhole_addr`` (an address whose dial hangs: a UDP socket that reads nothing does
for QUIC), ``refused_addrs`` and ``new_transport`` (a factory of fresh instances, each
with its own identity)::

    class TestQuic(MuxedTransportSuite):
        @pytest.fixture
        def new_transport(self):
            return lambda: QuicTransport(generate_private_key())
        ...

Every wait is bounded (:data:`STEP`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

import pytest
from multiaddr import Multiaddr

from p2pkit.errors import DialError
from p2pkit.network import MuxedTransport, MuxedTransportConnection
from p2pkit.peer import PeerId
from p2pkit.testing.muxer_base import MuxerPairFactory, read_all
from p2pkit.testing.muxer_suite import MuxerSuite
from p2pkit.testing.transport_checks import (
    check_can_dial_refuses,
    check_cancel_dial_leaks_nothing,
    check_dial_timeout,
)
from p2pkit.testing.transport_suite import AddressFixtures

__all__ = ["STEP", "MuxedTransportSuite", "open_native_pair"]

STEP = 10.0
Native = MuxedTransportConnection


async def open_native_pair(
    dialer: MuxedTransport, listener_transport: MuxedTransport, listen_addr: Multiaddr
) -> tuple[Native, Native]:
    """``(dialed, accepted)``: one connection between two transports; the listener is
    closed again (connections outlive it)."""
    accepted: asyncio.Queue[Native] = asyncio.Queue()
    listener = await listener_transport.listen(listen_addr, accepted.put_nowait)
    try:
        dialed = await dialer.dial(listener.addrs[0], timeout=STEP)
        inbound = await asyncio.wait_for(accepted.get(), STEP)
    finally:
        await listener.close()
    return dialed, inbound


class MuxedTransportSuite(AddressFixtures, MuxerSuite):
    """See the module docstring."""

    @pytest.fixture
    def transport(self, new_transport: Callable[[], MuxedTransport]) -> MuxedTransport:
        return new_transport()

    @pytest.fixture
    def new_transport(self) -> Callable[[], MuxedTransport]:
        raise NotImplementedError("provide a `new_transport` fixture (fresh instances)")

    @pytest.fixture
    async def transports(
        self, new_transport: Callable[[], MuxedTransport]
    ) -> AsyncIterator[Callable[[], MuxedTransport]]:
        """Fresh transports, closed at teardown."""
        made: list[MuxedTransport] = []

        def make() -> MuxedTransport:
            made.append(new_transport())
            return made[-1]

        yield make
        for t in made:
            with contextlib.suppress(Exception):
                await t.close()

    @pytest.fixture
    def muxer_pair(
        self, transports: Callable[[], MuxedTransport], listen_addr: Multiaddr
    ) -> MuxerPairFactory:
        async def make() -> tuple[object, object]:
            dialed, accepted = await open_native_pair(transports(), transports(), listen_addr)
            return dialed.muxed, accepted.muxed

        return make  # type: ignore[return-value]

    # -- transport scenarios -------------------------------------------------------------

    async def test_identities_and_addresses(
        self, transports: Callable[[], MuxedTransport], listen_addr: Multiaddr
    ) -> None:
        server, client = transports(), transports()
        assert server.can_listen(listen_addr)
        dialed, accepted = await open_native_pair(client, server, listen_addr)
        try:
            for conn in (dialed, accepted):
                assert conn.remote_peer == PeerId.from_public_key(conn.remote_public_key)
            assert dialed.remote_peer != accepted.remote_peer
            assert dialed.remote_addr is not None and server.can_dial(dialed.remote_addr)
            if dialed.local_addr is not None and accepted.remote_addr is not None:
                assert accepted.remote_addr == dialed.local_addr or (
                    accepted.remote_addr.protocols() == dialed.local_addr.protocols()
                )
            assert dialed.security_protocol and dialed.muxer_protocol
        finally:
            dialed.muxed.abort()
            accepted.muxed.abort()

    async def test_listener_close_stops_accepting(
        self, transports: Callable[[], MuxedTransport], listen_addr: Multiaddr
    ) -> None:
        server, client = transports(), transports()
        accepted: asyncio.Queue[Native] = asyncio.Queue()
        listener = await server.listen(listen_addr, accepted.put_nowait)
        addr = listener.addrs[0]
        first = await client.dial(addr, timeout=STEP)
        inbound = await asyncio.wait_for(accepted.get(), STEP)
        await listener.close()
        await listener.close()  # idempotent
        with pytest.raises(DialError):
            late = await client.dial(addr, timeout=1.0)
            late.muxed.abort()  # pragma: no cover
        # A connection accepted before the close lives on.
        stream = await first.muxed.open_stream()
        await stream.write(b"still here")
        await stream.close_write()
        theirs = await asyncio.wait_for(inbound.muxed.accept_stream(), STEP)
        assert await asyncio.wait_for(read_all(theirs), STEP) == b"still here"
        first.muxed.abort()

    async def test_handler_error_does_not_stop_listener(
        self, transports: Callable[[], MuxedTransport], listen_addr: Multiaddr
    ) -> None:
        server, client = transports(), transports()
        accepted: asyncio.Queue[Native] = asyncio.Queue()
        calls = 0

        def handler(conn: Native) -> None:
            nonlocal calls
            calls += 1
            if calls == 1:
                raise RuntimeError("handler bug (expected in this test)")
            accepted.put_nowait(conn)

        listener = await server.listen(listen_addr, handler)
        try:
            with contextlib.suppress(Exception):  # the first connection may die
                bad = await client.dial(listener.addrs[0], timeout=STEP)
                bad.muxed.abort()
            good = await client.dial(listener.addrs[0], timeout=STEP)
            inbound = await asyncio.wait_for(accepted.get(), STEP)
            stream = await good.muxed.open_stream()
            await stream.write(b"ok")
            await stream.close_write()
            theirs = await asyncio.wait_for(inbound.muxed.accept_stream(), STEP)
            assert await asyncio.wait_for(read_all(theirs), STEP) == b"ok"
            good.muxed.abort()
        finally:
            await listener.close()

    async def test_concurrent_connections(
        self, transports: Callable[[], MuxedTransport], listen_addr: Multiaddr
    ) -> None:
        server = transports()
        tasks: set[asyncio.Task[None]] = set()

        async def echo_first_stream(conn: Native) -> None:
            stream = await conn.muxed.accept_stream()
            await stream.write(await read_all(stream))
            await stream.close_write()

        def handler(conn: Native) -> None:
            tasks.add(asyncio.ensure_future(echo_first_stream(conn)))

        listener = await server.listen(listen_addr, handler)

        async def client(i: int) -> None:
            conn = await transports().dial(listener.addrs[0], timeout=STEP)
            stream = await conn.muxed.open_stream()
            payload = bytes([i]) * (50_000 + i)
            await stream.write(payload)
            await stream.close_write()
            assert await read_all(stream) == payload
            conn.muxed.abort()

        try:
            async with asyncio.timeout(STEP * 2):
                await asyncio.gather(*(client(i) for i in range(10)))
                await asyncio.gather(*tasks)
            assert len(tasks) == 10
        finally:
            await listener.close()

    async def test_dial_timeout(
        self, transport: MuxedTransport, blackhole_addr: Multiaddr | None
    ) -> None:
        await check_dial_timeout(transport, blackhole_addr, lambda conn: conn.muxed.abort())

    async def test_cancel_dial_leaks_nothing(
        self, transport: MuxedTransport, blackhole_addr: Multiaddr | None
    ) -> None:
        await check_cancel_dial_leaks_nothing(transport, blackhole_addr)

    async def test_can_dial_refuses_other_transports(
        self, transport: MuxedTransport, refused_addrs: list[Multiaddr]
    ) -> None:
        check_can_dial_refuses(transport, refused_addrs)

    async def test_close_closes_listeners(
        self, transports: Callable[[], MuxedTransport], listen_addr: Multiaddr
    ) -> None:
        server, client = transports(), transports()
        listener = await server.listen(listen_addr, lambda conn: conn.muxed.abort())
        addr = listener.addrs[0]
        await server.close()
        with pytest.raises(DialError):
            conn = await client.dial(addr, timeout=1.0)
            conn.muxed.abort()  # pragma: no cover
