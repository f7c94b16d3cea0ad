"""TLS throughput: one secured channel over loopback TCP (no muxer), sender and receiver
in two processes.

    python benchmarks/tls_throughput.py [--mib 512] [--runs 5] [--chunk-kib 256]

The receiver (a child process) accepts one connection per run, runs the TLS handshake,
switches the channel to push mode (as a muxer does), counts bytes until the sender's
close_notify and answers -- over the still-open other direction -- with the seconds
between its first and last byte.  The median MB/s (10^6 bytes) over the runs is printed
as one JSON line.
"""

from __future__ import annotations

import asyncio
import struct

from _throughput import Counter, PushDone, serve_and_send_main
from multiaddr import Multiaddr

from p2pkit.abc import RawConnection
from p2pkit.crypto import generate_private_key
from p2pkit_tcp import TcpOptions, TcpTransport
from p2pkit_tls import TlsSecurity


async def serve(runs: int) -> None:
    transport = TcpTransport(TcpOptions())
    security = TlsSecurity(generate_private_key("ed25519"))
    conns: asyncio.Queue[RawConnection] = asyncio.Queue()
    listener = await transport.listen(Multiaddr("/ip4/127.0.0.1/tcp/0"), conns.put_nowait)
    print(f"LISTEN {listener.addrs[0]}", flush=True)
    for _ in range(runs):
        raw = await conns.get()
        conn = await security.secure_inbound(raw)
        counter = Counter()
        conn.start_push(counter)
        await counter.done
        await conn.write(struct.pack(">dQ", counter.last - counter.first, counter.total))
        await conn.close()
    await listener.close()
    await transport.close()


class Replies(PushDone):
    """Push-mode reader of the receiver's 16-byte answer on the sender's channel: ``done``
    once the answer is complete (or at EOF)."""

    def __init__(self) -> None:
        super().__init__()
        self.data = bytearray()

    def data_received(self, data: memoryview) -> None:
        self.data += data
        if len(self.data) >= 16 and not self.done.done():
            self.done.set_result(None)


async def send(addr: str, total: int, chunk_size: int) -> tuple[float, int]:
    transport = TcpTransport(TcpOptions())
    security = TlsSecurity(generate_private_key("ed25519"))
    raw = await transport.dial(Multiaddr(addr))
    conn = await security.secure_outbound(raw, None)
    replies = Replies()
    conn.start_push(replies)
    chunk = bytes(chunk_size)
    sent = 0
    while sent < total:
        conn.write_nowait(chunk)
        sent += chunk_size
        if conn.write_paused:
            await conn.drain()
    await conn.close_write()
    await replies.done
    elapsed, got = struct.unpack(">dQ", bytes(replies.data[:16]))
    await conn.close()
    await transport.close()
    return elapsed, got


def main() -> None:
    serve_and_send_main("tls_throughput", __file__, serve, send)


if __name__ == "__main__":
    main()
