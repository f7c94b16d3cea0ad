"""``/echo/1.0.0``: everything read is written back; EOF is answered with EOF.

Not a libp2p spec; used by interop tests and demos (js-libp2p's echo does the same).
"""

from __future__ import annotations

import asyncio

from p2pkit.abc import MuxedStream

PROTOCOL_ID = "/echo/1.0.0"
#: Bytes read (and held while written back) at a time.  A peer that sends and never
#: reads the echo parks that much per stream in the handler, where no muxer accounts
#: it: 16 KiB keeps 1000 parked streams under 16 MiB (1 MiB allowed 256 MiB, 64 KiB
#: left the hostile-peer test's listener within a few MiB of its bound).
CHUNK = 16 << 10
#: A read or a write that waits this long ends the stream (the host resets it), so a
#: peer cannot park echo streams forever.
IDLE_TIMEOUT = 60.0


async def handle_echo(stream: MuxedStream) -> None:
    while True:
        async with asyncio.timeout(IDLE_TIMEOUT):
            data = await stream.read(CHUNK)
        if not data:
            break
        async with asyncio.timeout(IDLE_TIMEOUT):
            await stream.write(data)
    await stream.close_write()
