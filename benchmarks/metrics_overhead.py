"""What metrics cost on the data path: one perf stream, metrics off vs on, side by side.

    python benchmarks/metrics_overhead.py                   # 5 pairs, 256 MiB each way
    python benchmarks/metrics_overhead.py --bytes 1GiB --pairs 7

Two ``p2pkit listen`` processes run at once (TCP + Noise + Yamux), one plain and one
with ``--metrics``; this process holds two client hosts, one of each kind.  Each pair of
runs times one perf upload and one perf download against each listener (client and
listener configured alike), the order alternating between pairs so drift on a shared
machine hits both sides equally.  A run with metrics also scrapes both endpoints after
its transfer and checks the byte counters saw every byte.

Per run: wall-clock MB/s, and ``CPU-bound`` MB/s = bytes / the busier process's CPU
seconds (the rate on an otherwise idle core per process; wall-clock rates mean little
while other jobs share the cores).  Prints medians and the on/off ratios.  MB = 10**6.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from _procs import Listener
from _throughput import MiB, parse_size

from p2pkit.builder import HostBuilder
from p2pkit.host import Host
from p2pkit.protocols.perf import PROTOCOL_ID as PERF
from p2pkit.protocols.perf import perf

TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_of(pid: int) -> float:
    """CPU seconds (user + system) of process ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def scrape_bytes(url: str, name: str) -> float:
    with urllib.request.urlopen(url, timeout=10) as resp:
        text = resp.read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name + "{") and f'protocol="{PERF}"' in line
    )


def perf_bytes(url: str) -> float:
    """Perf bytes the endpoint counted, both ways."""
    return scrape_bytes(url, "p2pkit_stream_bytes_sent_total") + scrape_bytes(
        url, "p2pkit_stream_bytes_received_total"
    )


async def one_run(
    client: Host, target: str, listener_pid: int, direction: str, nbytes: int
) -> dict[str, float]:
    conn = await client.connect(target)
    stream = await conn.new_stream([PERF])
    up, down = (nbytes, 0) if direction == "upload" else (0, nbytes)
    cpu_client, cpu_listener = time.process_time(), cpu_of(listener_pid)
    result = await perf(stream, up, down)
    cpu_client = time.process_time() - cpu_client
    cpu_listener = cpu_of(listener_pid) - cpu_listener
    seconds = result.upload_seconds if direction == "upload" else result.download_seconds
    return {
        "wall": nbytes / seconds / 1e6,
        "cpu": nbytes / max(cpu_client, cpu_listener, 1e-9) / 1e6,
    }


async def main(args: argparse.Namespace) -> int:
    port = free_port()
    base = [sys.executable, "-m", "p2pkit", "listen", "--security", "noise", "--muxer", "yamux"]
    logs = Path(tempfile.mkdtemp(prefix="p2pkit-metrics-bench-"))
    listener_url = f"http://127.0.0.1:{port}/metrics"
    rates: dict[tuple[str, str], list[dict[str, float]]] = {}
    with (
        Listener("off", base, None, None, logs) as plain,
        Listener("on", [*base, "--metrics", f"127.0.0.1:{port}"], None, None, logs) as metered,
    ):
        assert plain.proc is not None and metered.proc is not None
        off = HostBuilder().security("noise").muxer("yamux").build()
        on = (
            HostBuilder()
            .security("noise")
            .muxer("yamux")
            .metrics("prometheus", address="127.0.0.1:0")
            .build()
        )
        sides = {
            "off": (off, plain.addr, plain.proc.pid),
            "on": (on, metered.addr, metered.proc.pid),
        }
        async with off, on:
            assert on.metrics is not None and on.metrics.endpoint is not None
            client_url = on.metrics.endpoint
            expected = 0
            for i in range(args.pairs):
                for direction in args.directions:
                    order = ("off", "on") if i % 2 == 0 else ("on", "off")
                    for mode in order:
                        host, target, pid = sides[mode]
                        r = await one_run(host, target, pid, direction, args.bytes)
                        rates.setdefault((direction, mode), []).append(r)
                        print(
                            f"pair {i + 1} {direction:8} metrics {mode:3}: "
                            f"{r['wall']:8.1f} MB/s wall, {r['cpu']:8.1f} MB/s CPU-bound",
                            flush=True,
                        )
                        if mode == "on":
                            expected += args.bytes
                            # A thread: the client's endpoint is served by this loop.
                            got = await asyncio.to_thread(perf_bytes, client_url)
                            seen = await asyncio.to_thread(perf_bytes, listener_url)
                            # perf also sends its 8-byte header on each stream.
                            assert got >= expected and seen >= expected, (got, seen, expected)
    print(f"\n{args.pairs} pairs of {args.bytes / MiB:.0f} MiB runs; medians:")
    for direction in args.directions:
        line = [f"{direction:8}"]
        for key in ("wall", "cpu"):
            off_m = statistics.median(r[key] for r in rates[(direction, "off")])
            on_m = statistics.median(r[key] for r in rates[(direction, "on")])
            label = "wall" if key == "wall" else "CPU-bound"
            line.append(
                f"{label}: off {off_m:.1f} MB/s, on {on_m:.1f} MB/s, on/off {on_m / off_m:.3f}"
            )
        print("  ".join(line))
    return 0


def parse_args(argv: list[str] | None = None) -> Any:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bytes", type=parse_size, default=256 * MiB)
    p.add_argument("--pairs", type=int, default=5)
    p.add_argument(
        "--direction",
        dest="directions",
        action="append",
        choices=["upload", "download"],
        help="repeatable; default both",
    )
    args = p.parse_args(argv)
    args.directions = args.directions or ["upload", "download"]
    return args


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main(parse_args())))
