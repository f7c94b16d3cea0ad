"""``/echo/1.0.0``: everything read is written back; EOF is answered with EOF.

Not a libp2p spec; used by interop tests and demos (js-libp2p's echo does the same).
"""

from __future__ import annotations

from p2pkit.abc import MuxedStream

PROTOCOL_ID = "/echo/1.0.0"
CHUNK = 1 << 20


async def handle_echo(stream: MuxedStream) -> None:
    while True:
        data = await stream.read(CHUNK)
        if not data:
            break
        await stream.write(data)
    await stream.close_write()
