"""mplex throughput: one stream over loopback TCP, no security, sender and receiver in
two processes.

    python benchmarks/mplex_throughput.py [--mib 512] [--runs 5] [--chunk-kib 256]

The receiver (a child process) accepts one connection per run, reads the stream to
EOF and answers with the seconds between its first and last byte.  The median MB/s
(10^6 bytes) over the runs is printed as one JSON line.
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
from typing import cast

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
        line = child.stdout.readline().split()
        addr = line[1]
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
    result = {
        "bench": "mplex_throughput",
        "python": sys.version.split()[0],
        "mib": args.mib,
        "chunk_kib": args.chunk_kib,
        "runs_MBps": [round(r, 1) for r in rates],
        "median_MBps": round(statistics.median(rates), 1),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
