"""``/ipfs/ping/1.0.0`` (libp2p/specs ping): 32 random bytes echoed back, repeatedly."""

from __future__ import annotations

import asyncio
import os
import time

from p2pkit.abc import MuxedStream
from p2pkit.errors import ProtocolError
from p2pkit.timerwheel import coarse_timeout

PROTOCOL_ID = "/ipfs/ping/1.0.0"
PING_SIZE = 32


#: A ping stream idle this long is closed (go-libp2p and js-libp2p do the same), so a
#: peer cannot park ping streams forever.
IDLE_TIMEOUT = 60.0


async def handle_ping(stream: MuxedStream) -> None:
    """Echo 32-byte pings until the peer closes its side or stays idle too long."""
    while True:
        try:
            async with coarse_timeout(IDLE_TIMEOUT):  # (p2pkit.timerwheel: why)
                payload = await stream.readexactly(PING_SIZE)
        except asyncio.IncompleteReadError:
            return
        except TimeoutError:
            stream.reset()
            return
        await stream.write(payload)


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
