"""mplex throughput: one stream over loopback TCP, no security, sender and receiver in
two processes.

    python benchmarks/mplex_throughput.py [--mib 512] [--runs 5] [--chunk-kib 256]

The receiver (a child process) accepts one connection per run, reads the stream to
EOF and answers with the seconds between its first and last byte.  The median MB/s
(10^6 bytes) over the runs is printed as one JSON line.
"""

from __future__ import annotations

import asyncio
import struct
import time
from typing import cast

from _throughput import serve_and_send_main
from multiaddr import Multiaddr

from p2pkit.abc import RawConnection, SecureConnection
from p2pkit_mplex import MplexMuxer
from p2pkit_tcp import TcpOptions, TcpTransport


async def serve(runs: int) -> None:
    transport = TcpTransport(TcpOptions())
    conns: asyncio.Queue[RawConnection] = asyncio.Queue()
    listener = await transport.listen(Multiaddr("/ip4/127.0.0.1/tcp/0"), conns.put_nowait)
    print(f"LISTEN {listener.addrs[0]}", flush=True)
    muxer = MplexMuxer()
    for _ in range(runs):
        raw = await conns.get()
        session = muxer.new_session(cast(SecureConnection, raw), is_initiator=False)
        stream = await session.accept_stream()
        first = await stream.read()
        start = time.perf_counter()
        total = len(first)
        while chunk := await stream.read():
            total += len(chunk)
        elapsed = time.perf_counter() - start
        await stream.write(struct.pack(">dQ", elapsed, total))
        await stream.close_write()
        await session.wait_closed()
    await listener.close()
    await transport.close()


async def send(addr: str, total: int, chunk_size: int) -> tuple[float, int]:
    transport = TcpTransport(TcpOptions())
    raw = await transport.dial(Multiaddr(addr))
    session = MplexMuxer().new_session(cast(SecureConnection, raw), is_initiator=True)
    stream = await session.open_stream()
    chunk = bytes(chunk_size)
    sent = 0
    while sent < total:
        await stream.write(chunk)
        sent += chunk_size
    await stream.close_write()
    elapsed, got = struct.unpack(">dQ", await stream.readexactly(16))
    await session.close()
    await transport.close()
    return elapsed, got


def main() -> None:
    serve_and_send_main("mplex_throughput", __file__, serve, send)


if __name__ == "__main__":
    main()
