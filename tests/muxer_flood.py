"""What the yamux and mplex control-flood tests share: a loopback TCP listener that runs
muxer sessions (plaintext: the raw channel is the secure channel) with an echo acceptor,
a good peer that echoes through it, and a hostile raw socket that never reads."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import cast

from multiaddr import Multiaddr

from p2pkit.abc import MuxedConnection, RawConnection, SecureConnection, StreamMuxer
from p2pkit.stream_socket import StreamSocketConnection
from p2pkit_tcp import TcpOptions, TcpTransport

HIGH_WATER = 64 * 1024
"""The listener's write high-water mark: what it queues before ``write_paused``."""


@dataclass
class FloodListener:
    transport: TcpTransport
    addr: Multiaddr
    muxer: StreamMuxer
    sessions: list[tuple[StreamSocketConnection, MuxedConnection]] = field(
        default_factory=list
    )
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def good_echo(self, payload: bytes) -> bytes:
        """A good peer's echo on a connection of its own."""
        conn = await self.transport.dial(self.addr)
        session = self.muxer.new_session(cast(SecureConnection, conn), is_initiator=True)
        try:
            stream = await session.open_stream()
            await stream.write(payload)
            await stream.close_write()
            got = b""
            async with asyncio.timeout(10):
                while chunk := await stream.read():
                    got += chunk
            return got
        finally:
            await session.close()

    async def hostile(self) -> tuple[socket.socket, StreamSocketConnection, MuxedConnection]:
        """A raw socket that will never read (tiny receive buffer), and the listener's side
        of it (tiny send buffer), so replies queue in asyncio within a few batches."""
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        host, port = self.addr.value_for_protocol("ip4"), self.addr.value_for_protocol("tcp")
        await asyncio.get_running_loop().sock_connect(sock, (host, int(port)))
        count = len(self.sessions) + 1
        async with asyncio.timeout(10):  # the listener has the connection once it reads
            while len(self.sessions) < count:
                await asyncio.sleep(0.01)
        raw, session = self.sessions[-1]
        raw.set_socket_option(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        return sock, raw, session


async def _echo(session: MuxedConnection) -> None:
    while True:
        try:
            stream = await session.accept_stream()
        except Exception:
            return
        data = await stream.read()
        while data:
            await stream.write(data)
            data = await stream.read()
        await stream.close()


@asynccontextmanager
async def flood_listener(muxer: StreamMuxer) -> AsyncIterator[FloodListener]:
    transport = TcpTransport(TcpOptions(write_high_water=HIGH_WATER))
    box: list[FloodListener] = []

    def on_conn(conn: RawConnection) -> None:
        session = muxer.new_session(cast(SecureConnection, conn), is_initiator=False)
        box[0].sessions.append((cast(StreamSocketConnection, conn), session))
        box[0].tasks.append(asyncio.get_running_loop().create_task(_echo(session)))

    lst = await transport.listen(Multiaddr("/ip4/127.0.0.1/tcp/0"), on_conn)
    box.append(FloodListener(transport, lst.addrs[0], muxer))
    try:
        yield box[0]
    finally:
        for _, session in box[0].sessions:
            session.abort()
        for task in box[0].tasks:
            task.cancel()
        await asyncio.gather(*box[0].tasks, return_exceptions=True)
        await lst.close()
        await transport.close()
