"""``/ipfs/ping/1.0.0`` (libp2p/specs ping): 32 random bytes echoed back, repeatedly."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from p2pkit.abc import MuxedStream, StreamHandler
from p2pkit.errors import ProtocolError
from p2pkit.timerwheel import coarse_timeout

if TYPE_CHECKING:
    from p2pkit.connection import Connection
    from p2pkit.peer import PeerId

PROTOCOL_ID = "/ipfs/ping/1.0.0"
PING_SIZE = 32


#: A ping stream idle this long is closed (go-libp2p and js-libp2p do the same), so a
#: peer cannot park ping streams forever.
IDLE_TIMEOUT = 60.0


#: ping.md: "the listening peer SHOULD accept at most two streams per peer" (js-libp2p:
#: 2); more are reset (:func:`ping_handler`).
MAX_STREAMS_PER_PEER = 2


async def handle_ping(stream: MuxedStream) -> None:
    """Echo 32-byte pings until the peer closes its side or stays idle too long.

    The bound covers a ping's read *and* its echo's write (as go's handler timer): a
    peer that sends pings and never reads the answers cannot park the handler."""
    while True:
        try:
            async with coarse_timeout(IDLE_TIMEOUT):  # (p2pkit.timerwheel: why)
                payload = await stream.readexactly(PING_SIZE)
                await stream.write(payload)
        except asyncio.IncompleteReadError:
            return
        except TimeoutError:
            stream.reset()
            return


def ping_handler(connection_of: Callable[[MuxedStream], Connection | None]) -> StreamHandler:
    """:func:`handle_ping` with at most :data:`MAX_STREAMS_PER_PEER` streams per peer
    (``connection_of``: the host's, to know a stream's peer)."""
    active: dict[PeerId, int] = {}

    async def handler(stream: MuxedStream) -> None:
        conn = connection_of(stream)
        if conn is None:
            stream.reset()
            return
        peer = conn.peer
        count = active.get(peer, 0)
        if count >= MAX_STREAMS_PER_PEER:
            stream.reset()
            return
        active[peer] = count + 1
        try:
            await handle_ping(stream)
        finally:
            left = active[peer] - 1
            if left:
                active[peer] = left
            else:
                del active[peer]

    return handler


async def ping(stream: MuxedStream, count: int = 1, *, timeout: float = 10.0) -> list[float]:
    """Send ``count`` pings on ``stream``; returns the round-trip times in seconds."""
    rtts: list[float] = []
    for _ in range(count):
        payload = os.urandom(PING_SIZE)
        start = time.perf_counter()
        await stream.write(payload)
        async with asyncio.timeout(timeout):
            try:
                answer = await stream.readexactly(PING_SIZE)
            except asyncio.IncompleteReadError as exc:
                raise ProtocolError("peer closed the ping stream") from exc
        rtts.append(time.perf_counter() - start)
        if answer != payload:
            raise ProtocolError("ping answer does not match the payload")
    await stream.close()
    return rtts
