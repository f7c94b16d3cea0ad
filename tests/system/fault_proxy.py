"""A one-connection TCP proxy for fault injection: forwards bytes both ways and, when
told to, cuts the connection after an exact byte count in one direction.

Why a proxy: it is the only way to end a real TCP connection *mid-frame* on purpose
(the hosts always write whole frames), and to make both hosts see a peer that
vanished (FIN or RST) without any cooperation from the code under test.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from dataclasses import dataclass
from typing import Literal

Direction = Literal["c2s", "s2c"]
How = Literal["close", "rst"]
_LINGER_ZERO = struct.pack("ii", 1, 0)
READ_SIZE = 64 * 1024


@dataclass(frozen=True)
class Cut:
    """Forward ``after`` bytes in ``direction`` (client -> server or back), then end
    both sockets: ``close`` (FIN, after flushing) or ``rst`` (SO_LINGER 0, abort)."""

    direction: Direction
    after: int
    how: How


def rst(writer: asyncio.StreamWriter) -> None:
    """End a socket with a TCP RST: SO_LINGER 0, then close without flushing."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_ZERO)
        except OSError:
            pass  # already gone
    writer.transport.abort()


class FaultProxy:
    """Accepts one connection on 127.0.0.1 and relays it to ``target_port``.

    ``upstream_port`` (the proxy's local port towards the target) names the connection
    the target host sees, so a test can find that host's side of it.
    """

    def __init__(self, target_port: int, cut: Cut | None = None) -> None:
        self.target_port = target_port
        self.cut = cut
        self.port = 0
        self.upstream_port: int | None = None
        self.cut_done = False
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self.connected = asyncio.Event()

    async def start(self) -> FaultProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    @property
    def addr(self) -> str:
        return f"/ip4/127.0.0.1/tcp/{self.port}"

    async def _accept(self, c_reader: asyncio.StreamReader, c_writer: asyncio.StreamWriter) -> None:
        self._writers.append(c_writer)
        if self._server is not None:
            self._server.close()  # one connection only
        if self.upstream_port is not None:
            rst(c_writer)
            return
        try:
            s_reader, s_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            rst(c_writer)
            return
        self._writers.append(s_writer)
        self.upstream_port = s_writer.get_extra_info("sockname")[1]
        self.connected.set()
        for args in ((c_reader, s_writer, "c2s"), (s_reader, c_writer, "s2c")):
            task = asyncio.create_task(self._pump(*args))  # type: ignore[arg-type]
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, direction: Direction
    ) -> None:
        count = 0
        cut = self.cut if self.cut is not None and self.cut.direction == direction else None
        try:
            while True:
                data = await reader.read(READ_SIZE)
                if not data:
                    if writer.can_write_eof() and not writer.is_closing():
                        writer.write_eof()  # relay the half-close
                    return
                if cut is not None and count + len(data) >= cut.after:
                    writer.write(data[: cut.after - count])
                    await writer.drain()
                    self._cut(cut.how)
                    return
                count += len(data)
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            # One side reset (or the proxy already cut): the other side sees a reset too.
            for w in self._writers:
                rst(w)

    def _cut(self, how: How) -> None:
        self.cut_done = True
        for w in self._writers:
            if how == "rst":
                rst(w)
            else:
                w.close()

    async def close(self) -> None:
        """Stop listening, reset whatever is still open and wait for the pumps."""
        if self._server is not None:
            self._server.close()
        for w in self._writers:
            if not w.is_closing():
                rst(w)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for w in self._writers:
            try:
                await w.wait_closed()
            except (ConnectionError, OSError):
                pass
        if self._server is not None:
            await self._server.wait_closed()
