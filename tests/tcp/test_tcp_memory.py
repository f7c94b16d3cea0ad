"""Receive-buffer memory over real loopback TCP connections.

An idle or quiet connection holds no receive buffer and reads into a small one; a bulk
transfer grows it, and it shrinks back once the connection is quiet again; a connection
the host refuses at admission never had one.
"""

from __future__ import annotations

import asyncio
import fcntl
import socket
import struct
import termios

from multiaddr import Multiaddr

from p2pkit.abc import RawConnection
from p2pkit.bufpool import MIN_SIZE, thread_pool
from p2pkit.builder import HostBuilder
from p2pkit.stream_socket import StreamSocketConnection
from p2pkit.testing.transport_suite import Collector, dispose, open_pair
from p2pkit_tcp import TcpOptions, TcpTransport

LOCAL = Multiaddr("/ip4/127.0.0.1/tcp/0")
MAX = 256 * 1024


class Echo(Collector):
    """Echoes every chunk back and records the receive-buffer size after each read."""

    def __init__(self, conn: StreamSocketConnection) -> None:
        super().__init__()
        self.conn = conn
        self.sizes: list[int] = []

    def data_received(self, data: memoryview) -> None:
        super().data_received(data)
        self.conn.write_nowait(bytes(data[:1]))  # one byte back per read: a round trip
        self.sizes.append(self.conn.receive_buffer.size)


async def pair() -> tuple[RawConnection, StreamSocketConnection]:
    dialed, accepted = await open_pair(TcpTransport(TcpOptions(read_buffer_size=MAX)), LOCAL)
    assert isinstance(accepted, StreamSocketConnection)
    return dialed, accepted


def queued(conn: StreamSocketConnection) -> int:
    """Bytes the kernel holds for ``conn`` unread."""
    sock = conn._socket()
    return struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0" * 4))[0]


async def ping_pong(dialed: RawConnection, echo: Echo, rounds: int) -> None:
    """``rounds`` single small writes, each answered before the next: one read each."""
    for i in range(rounds):
        await dialed.write(b"p" * 100)
        await echo.wait_for(lambda c, i=i: len(c.data) >= 100 * (i + 1), "the ping")
        async with asyncio.timeout(5):
            assert len(await dialed.read(1)) == 1


async def test_a_quiet_connection_reads_into_a_small_buffer_and_holds_none() -> None:
    dialed, accepted = await pair()
    try:
        echo = Echo(accepted)
        accepted.start_push(echo)
        await ping_pong(dialed, echo, 20)
        assert set(echo.sizes) == {MIN_SIZE}
        assert accepted.receive_buffer.held == 0  # between reads: nothing lent
    finally:
        await dispose(dialed, accepted)


async def test_a_busy_connection_grows_its_buffer_and_shrinks_back_when_quiet() -> None:
    dialed, accepted = await pair()
    try:
        echo = Echo(accepted)
        accepted.pause_reading()  # let the kernel queue fill: reads then fill the buffer
        accepted.start_push(echo)
        bulk = 4 * MAX
        dialed.write_nowait(b"b" * bulk)
        async with asyncio.timeout(5):  # 4 + 16 + 64 KiB queued: three reads that fill
            while queued(accepted) < 100_000:
                await asyncio.sleep(0.005)
        accepted.resume_reading()
        await echo.wait_for(lambda c: len(c.data) >= bulk, "the bulk transfer")
        assert max(echo.sizes) == MAX
        echoed = 0
        async with asyncio.timeout(5):  # the echoed bytes, one per read
            while echoed < len(echo.sizes):
                echoed += len(await dialed.read(len(echo.sizes) - echoed))
        assert accepted.receive_buffer.size > MIN_SIZE
        echo.data.clear()
        await ping_pong(dialed, echo, 200)
        assert accepted.receive_buffer.size == MIN_SIZE
        assert accepted.receive_buffer.held == 0
    finally:
        await dispose(dialed, accepted)


async def test_many_busy_connections_share_a_bounded_pool() -> None:
    pairs = [await pair() for _ in range(8)]
    try:
        echos = []
        for dialed, accepted in pairs:
            echo = Echo(accepted)
            accepted.start_push(echo)
            echos.append(echo)
            dialed.write_nowait(b"x" * (2 * MAX))
        for echo in echos:
            await echo.wait_for(lambda c: len(c.data) >= 2 * MAX, "the transfer")
        pool = thread_pool()
        assert all(a.receive_buffer.held == 0 for _, a in pairs)
        assert pool.held_bytes <= pool.max_bytes
    finally:
        for dialed, accepted in pairs:
            await dispose(dialed, accepted)


async def _raw_client(addr: Multiaddr) -> None:
    """Connect with a plain socket, send the start of a negotiation, wait for the close."""
    host = addr.value_for_protocol("ip4")
    port = int(addr.value_for_protocol("tcp"))
    reader, writer = await asyncio.open_connection(host, port, family=socket.AF_INET)
    try:
        writer.write(b"\x13/multistream/1.0.0\n" * 100)
        async with asyncio.timeout(5):
            while await reader.read(4096):
                pass
    except ConnectionError:
        pass  # reset: refused
    finally:
        writer.close()


async def _inbound_conns(deny: bool) -> list[StreamSocketConnection]:
    builder = HostBuilder().listen(str(LOCAL))
    if deny:
        builder = builder.gater(deny_cidrs=["127.0.0.0/8"])
    host = builder.build()
    seen: list[StreamSocketConnection] = []
    admit = host.swarm._on_inbound

    def spy(conn: object) -> None:  # what the transport hands the swarm, then the swarm
        assert isinstance(conn, StreamSocketConnection)
        seen.append(conn)
        admit(conn)

    host.swarm._on_inbound = spy  # type: ignore[method-assign]
    async with host:
        addr = host.listen_addrs[0]
        if deny:
            await _raw_client(addr)
        else:
            client = HostBuilder().build()
            async with client:
                await client.connect(Multiaddr(f"{addr}/p2p/{host.peer_id}"))
        async with asyncio.timeout(5):
            while not seen or (not seen[0].closed and deny):
                await asyncio.sleep(0.01)
    return seen


async def test_a_refused_inbound_connection_never_had_a_receive_buffer() -> None:
    refused = await _inbound_conns(deny=True)
    assert len(refused) == 1 and refused[0].closed
    assert refused[0].receive_buffer.lends == 0
    # The same check on an admitted connection: it did read into lent buffers.
    admitted = await _inbound_conns(deny=False)
    assert len(admitted) == 1 and admitted[0].receive_buffer.lends > 0
    assert admitted[0].receive_buffer.held == 0
