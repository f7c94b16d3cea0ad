"""Fixtures shared by the QUIC tests: hosts and raw transports on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from multiaddr import Multiaddr

from p2pkit.builder import HostBuilder
from p2pkit.crypto import generate_private_key
from p2pkit.host import Host
from p2pkit.network import MuxedTransportConnection
from p2pkit.protocols.echo import PROTOCOL_ID as ECHO
from p2pkit_quic import QuicOptions, QuicTransport
from tests.hosts import host_starter

LISTEN = "/ip4/127.0.0.1/udp/0/quic-v1"


@pytest.fixture
async def make_host() -> AsyncIterator[Callable[..., Awaitable[Host]]]:
    """Build and start QUIC-only hosts; stopped at teardown."""
    async with host_starter() as start:

        async def factory(
            listen: bool = True, quic: dict[str, Any] | None = None, **options: Any
        ) -> Host:
            b = HostBuilder().transport("quic", **(quic or {}))
            if listen:
                b.listen(LISTEN)
            return await start(b, **options)

        yield factory


@pytest.fixture
async def transports() -> AsyncIterator[Callable[..., QuicTransport]]:
    """Raw QUIC transports (own keys), closed at teardown."""
    made: list[QuicTransport] = []

    def factory(**options: Any) -> QuicTransport:
        t = QuicTransport(generate_private_key("ed25519"), QuicOptions(**options))
        made.append(t)
        return t

    yield factory
    for t in made:
        await t.close()


async def quic_pair(
    server: QuicTransport, client: QuicTransport
) -> tuple[MuxedTransportConnection, MuxedTransportConnection]:
    """A connected (client, server) pair of native connections over loopback."""
    accepted: list[MuxedTransportConnection] = []
    listener = await server.listen(Multiaddr(LISTEN), accepted.append)
    try:
        conn = await client.dial(listener.addrs[0], timeout=5)
        for _ in range(500):
            if accepted:
                break
            await asyncio.sleep(0.01)
        assert accepted, "the listener never reported the connection"
    finally:
        await listener.close()
    return conn, accepted[0]


def send_gapped(conn: Any, size: int) -> None:
    """Queue ``size`` bytes on a new stream of ``conn`` (a QUIC connection) of which only
    the odd offsets will leave: one-byte frames, a gap before each (size / 2 gaps).  Set
    directly: subtracting every other byte from aioquic's pending ranges is quadratic."""
    quic = conn.muxed.quic
    sid = quic.get_next_available_stream_id()
    quic.send_stream_data(sid, bytes(size))
    pending = quic._streams[sid].sender._pending
    pending._RangeSet__ranges[:] = [range(o, o + 1) for o in range(1, size, 2)]


async def wait_closed(conn: Any, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not conn.is_closed:
            await asyncio.sleep(0.01)


async def still_echoes(listener: Host, client: Host) -> None:
    """``client`` connects to ``listener`` afresh and gets an echo back."""
    stream = await (await client.connect(listener.addrs_with_peer_id[0])).new_stream([ECHO])
    await stream.write(b"still here")
    await stream.close_write()
    async with asyncio.timeout(10):
        assert await stream.read() == b"still here"
