"""Noise throughput over real loopback TCP, sender and receiver in two processes.

    python benchmarks/noise_throughput.py                    # both scenarios, 3 runs each
    python benchmarks/noise_throughput.py --bytes 256MiB --runs 5 --scenario raw
    python benchmarks/noise_throughput.py --profile recv     # cProfile of the receiver

Scenarios:

* ``raw``: TCP + Noise, no muxer.  The receiver switches the Noise channel to push mode
  (as a muxer does) and counts bytes; the sender writes 1 MiB blocks with
  ``write_nowait`` and waits on ``drain`` under backpressure.
* ``yamux``: TCP + Noise + Yamux (``p2pkit_yamux``, window auto-tuned up to 16 MiB),
  one stream; skipped when the package is not installed.

MB = 10**6 bytes; the receiver times from its first payload byte to EOF (handshake
excluded).  Prints one line per run and the median per scenario.  Each process also
reports its CPU seconds per GB; ``CPU-bound`` = bytes / the busier process's CPU time, the
rate an otherwise idle machine with a core per process would reach (wall-clock figures
are meaningless while other jobs share the cores).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import multiprocessing as mp
import pstats
import statistics
import time
from multiprocessing.connection import Connection
from typing import Any

from multiaddr import Multiaddr

from p2pkit.abc import RawConnection
from p2pkit.crypto import generate_private_key
from p2pkit_noise import NoiseSecurity
from p2pkit_tcp import TcpOptions, TcpTransport

KiB = 1024
MiB = 1024 * KiB
BLOCK = 1 * MiB


def parse_size(text: str) -> int:
    units = {"KiB": KiB, "MiB": MiB, "GiB": 1024 * MiB, "KB": 10**3, "MB": 10**6, "GB": 10**9}
    for unit, mul in units.items():
        if text.endswith(unit):
            return int(float(text[: -len(unit)]) * mul)
    return int(text)


def have_yamux() -> bool:
    try:
        import p2pkit_yamux  # noqa: F401
    except ImportError:
        return False
    return True


class Counter:
    """Push-mode receiver: counts bytes; ``done`` resolves at EOF."""

    def __init__(self) -> None:
        self.total = 0
        self.first = 0.0
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def data_received(self, data: memoryview) -> None:
        if not self.total:
            self.first = time.perf_counter()
        self.total += len(data)

    def eof_received(self) -> None:
        if not self.done.done():
            self.done.set_result(None)

    def connection_lost(self, exc: BaseException | None) -> None:
        self.eof_received()


# -- receiver (child process) -------------------------------------------------------------


async def _receiver(scenario: str, pipe: Connection, profile: bool, read_buffer: int) -> None:
    transport = TcpTransport(TcpOptions(read_buffer_size=read_buffer))
    security = NoiseSecurity(generate_private_key("ed25519"))
    accepted: asyncio.Future[RawConnection] = asyncio.get_running_loop().create_future()
    listener = await transport.listen(
        Multiaddr("/ip4/127.0.0.1/tcp/0"), lambda c: accepted.set_result(c)
    )
    pipe.send(str(listener.addrs[0]))
    raw = await accepted
    await listener.close()
    conn = await security.secure_inbound(raw, ["/yamux/1.0.0"])
    cpu0 = time.process_time()
    prof = cProfile.Profile() if profile else None
    if prof:
        prof.enable()
    if scenario == "raw":
        counter = Counter()
        conn.start_push(counter)
        await counter.done
        end = time.perf_counter()
        received, first = counter.total, counter.first
    else:
        from p2pkit_yamux import YamuxMuxer, YamuxOptions

        session = YamuxMuxer(YamuxOptions(keepalive_interval=0)).new_session(
            conn, is_initiator=False
        )
        stream = await session.accept_stream()
        chunk = await stream.read()
        first = time.perf_counter()
        received = 0
        while chunk:
            received += len(chunk)
            chunk = await stream.read()
        end = time.perf_counter()
        await stream.close()
    if prof:
        prof.disable()
    cpu = time.process_time() - cpu0
    pipe.send({"bytes": received, "seconds": end - first, "recv_cpu": cpu})
    if scenario != "raw":
        await session.close()
    await conn.close()
    await transport.close()
    if prof:
        pstats.Stats(prof).sort_stats("tottime").print_stats(18)


def receiver_main(scenario: str, pipe: Connection, profile: bool, read_buffer: int) -> None:
    asyncio.run(_receiver(scenario, pipe, profile, read_buffer))


# -- sender (this process) ----------------------------------------------------------------


async def _send(addr: str, scenario: str, total: int, profile: bool) -> float:
    """Send ``total`` bytes; return the CPU seconds spent after the handshake."""
    transport = TcpTransport(TcpOptions())
    security = NoiseSecurity(generate_private_key("ed25519"))
    raw = await transport.dial(Multiaddr(addr))
    conn = await security.secure_outbound(raw, None, ["/yamux/1.0.0"])
    block = bytes(range(256)) * (BLOCK // 256)
    cpu0 = time.process_time()
    prof = cProfile.Profile() if profile else None
    if prof:
        prof.enable()
    if scenario == "raw":
        left = total
        while left > 0:
            conn.write_nowait(block if left >= BLOCK else block[:left])
            left -= BLOCK
            if conn.write_paused:
                await conn.drain()
        await conn.close_write()
    else:
        from p2pkit_yamux import YamuxMuxer, YamuxOptions

        session = YamuxMuxer(YamuxOptions(keepalive_interval=0)).new_session(
            conn, is_initiator=True
        )
        stream = await session.open_stream()
        left = total
        while left > 0:
            await stream.write(block if left >= BLOCK else block[:left])
            left -= BLOCK
        await stream.close_write()
        while await stream.read():
            pass
    if prof:
        prof.disable()
        pstats.Stats(prof).sort_stats("tottime").print_stats(18)
    cpu = time.process_time() - cpu0
    if scenario != "raw":
        await session.close()
    await conn.close()
    await transport.close()
    return cpu


def run_once(scenario: str, total: int, profile: str, read_buffer: int) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(
        target=receiver_main, args=(scenario, child, profile == "recv", read_buffer), daemon=True
    )
    proc.start()
    try:
        addr = parent.recv()
        send_cpu = asyncio.run(_send(addr, scenario, total, profile == "send"))
        result: dict[str, Any] = parent.recv()
        result["send_cpu"] = send_cpu
    finally:
        proc.join(60)
        if proc.is_alive():
            proc.kill()
    result["MBps"] = result["bytes"] / result["seconds"] / 1e6
    gb = result["bytes"] / 1e9
    result["send_cpu_per_GB"] = result["send_cpu"] / gb
    result["recv_cpu_per_GB"] = result["recv_cpu"] / gb
    # What an otherwise idle 2-core machine would reach: each process on its own core,
    # the busier one sets the pace.
    result["cpu_bound_MBps"] = result["bytes"] / max(result["send_cpu"], result["recv_cpu"]) / 1e6
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--bytes", default="1GiB", help="total payload per run (default 1GiB)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--scenario", action="append", choices=["raw", "yamux"], default=None)
    ap.add_argument("--profile", choices=["send", "recv"], default="")
    ap.add_argument("--json", action="store_true", help="one JSON object at the end")
    ap.add_argument(
        "--read-buffer",
        default=f"{TcpOptions().read_buffer_size // KiB}KiB",
        help="receiver's TCP read buffer (default: p2pkit-tcp's read_buffer_size)",
    )
    args = ap.parse_args()
    total = parse_size(args.bytes)
    summary: dict[str, Any] = {}
    for scenario in args.scenario or ["raw", "yamux"]:
        if scenario == "yamux" and not have_yamux():
            print("yamux    skipped: p2pkit_yamux is not installed", flush=True)
            continue
        rates, bounds = [], []
        for i in range(args.runs):
            r = run_once(scenario, total, args.profile, parse_size(args.read_buffer))
            rates.append(r["MBps"])
            bounds.append(r["cpu_bound_MBps"])
            print(
                f"{scenario:8} run {i + 1}: {r['bytes'] / 1e6:8.1f} MB in {r['seconds']:6.3f} s"
                f" = {r['MBps']:7.1f} MB/s; CPU s/GB send {r['send_cpu_per_GB']:.2f}"
                f" recv {r['recv_cpu_per_GB']:.2f} (CPU-bound {r['cpu_bound_MBps']:.0f} MB/s)",
                flush=True,
            )
        med = statistics.median(rates)
        summary[scenario] = {
            "MBps_median": med,
            "cpu_bound_MBps_median": statistics.median(bounds),
            "runs": rates,
        }
        print(
            f"{scenario:8} median: {med:7.1f} MB/s over {args.runs} runs"
            f" (CPU-bound median {statistics.median(bounds):.0f} MB/s)",
            flush=True,
        )
    if args.json:
        print(json.dumps(summary))


if __name__ == "__main__":
    main()
