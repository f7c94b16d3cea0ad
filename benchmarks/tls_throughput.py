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

import argparse
import asyncio
import json
import statistics
import struct
import subprocess
import sys
import time

from multiaddr import Multiaddr

from p2pkit.abc import RawConnection
from p2pkit.crypto import generate_private_key
from p2pkit_tcp import TcpOptions, TcpTransport
from p2pkit_tls import TlsSecurity


class Counter:
    """Push-mode receiver: counts bytes, notes the time of the first and last byte."""

    def __init__(self) -> None:
        self.total = 0
        self.first = 0.0
        self.last = 0.0
        self.done = asyncio.get_running_loop().create_future()

    def data_received(self, data: memoryview) -> None:
        now = time.perf_counter()
        if not self.total:
            self.first = now
        self.last = now
        self.total += len(data)

    def eof_received(self) -> None:
        if not self.done.done():
            self.done.set_result(None)

    def connection_lost(self, exc: BaseException | None) -> None:
        self.eof_received()


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


class Replies:
    def __init__(self) -> None:
        self.data = bytearray()
        self.done = asyncio.get_running_loop().create_future()

    def data_received(self, data: memoryview) -> None:
        self.data += data
        if len(self.data) >= 16 and not self.done.done():
            self.done.set_result(None)

    def eof_received(self) -> None:
        if not self.done.done():
            self.done.set_result(None)

    def connection_lost(self, exc: BaseException | None) -> None:
        self.eof_received()


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
    p = argparse.ArgumentParser()
    p.add_argument("--mib", type=int, default=512)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--chunk-kib", type=int, default=256)
    p.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.serve:
        asyncio.run(serve(args.runs))
        return
    child = subprocess.Popen(
        [sys.executable, __file__, "--serve", "--runs", str(args.runs)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        addr = child.stdout.readline().split()[1]
        total = args.mib << 20
        rates = []
        for _ in range(args.runs):
            elapsed, got = asyncio.run(send(addr, total, args.chunk_kib << 10))
            assert got >= total, (got, total)
            rates.append(got / elapsed / 1e6)
        child.wait(30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        if child.stdout is not None:
            child.stdout.close()
    print(
        json.dumps(
            {
                "bench": "tls_throughput",
                "python": sys.version.split()[0],
                "mib": args.mib,
                "chunk_kib": args.chunk_kib,
                "runs_MBps": [round(r, 1) for r in rates],
                "median_MBps": round(statistics.median(rates), 1),
            }
        )
    )


if __name__ == "__main__":
    main()
