"""Yamux throughput over real loopback TCP, sender and receiver in two processes.

Plaintext (raw TCP channel directly under yamux): this measures the muxer, not the
cipher.  MB = 10**6 bytes; the receiver times from its first payload byte to EOF.

    python benchmarks/yamux_throughput.py                 # all scenarios, 3 runs each
    python benchmarks/yamux_throughput.py --bytes 256MiB --runs 5 --scenario auto
    python benchmarks/yamux_throughput.py --profile recv  # cProfile of the receiver

Scenarios: ``fixed`` (one stream, 256 KiB window, no auto-tuning), ``auto`` (one stream,
window auto-tuned up to 16 MiB), ``streams`` (``--streams`` concurrent streams sharing
the same total).  Prints one line per run and the median per scenario.
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

from p2pkit.abc import MuxedStream, RawConnection
from p2pkit_tcp import TcpOptions, TcpTransport
from p2pkit_yamux import YamuxMuxer, YamuxOptions

KiB = 1024
MiB = 1024 * KiB
CHUNK = 1 * MiB


def parse_size(text: str) -> int:
    units = {"KiB": KiB, "MiB": MiB, "GiB": 1024 * MiB, "KB": 10**3, "MB": 10**6, "GB": 10**9}
    for unit, mul in units.items():
        if text.endswith(unit):
            return int(float(text[: -len(unit)]) * mul)
    return int(text)


def fmt_ms(rtt: float | None) -> str:
    return "n/a" if rtt is None else f"{rtt * 1e3:.2f} ms"


def options_for(scenario: str) -> YamuxOptions:
    if scenario == "fixed":
        return YamuxOptions(max_stream_window=256 * KiB, keepalive_interval=0)
    return YamuxOptions(keepalive_interval=0)


# -- receiver (child process) -------------------------------------------------------------


async def _receiver(
    scenario: str, n_streams: int, pipe: Connection, profile: bool, read_buffer: int
) -> None:
    transport = TcpTransport(TcpOptions(read_buffer_size=read_buffer))
    accepted: asyncio.Future[RawConnection] = asyncio.get_running_loop().create_future()
    listener = await transport.listen(
        Multiaddr("/ip4/127.0.0.1/tcp/0"), lambda c: accepted.set_result(c)
    )
    pipe.send(str(listener.addrs[0]))
    conn = await accepted
    await listener.close()
    session = YamuxMuxer(options_for(scenario)).new_session(
        conn,  # type: ignore[arg-type]  # a raw channel is enough for the muxer
        is_initiator=False,
    )
    first: list[float] = []
    cpu: list[float] = []
    received = 0
    prof = cProfile.Profile() if profile else None

    peak = 0
    # Read at most one socket read's worth: ReadBuffer then hands out whole received
    # chunks and (almost) never joins them (a join is a second copy of the payload).
    read_size = read_buffer

    async def drain(stream: MuxedStream) -> None:
        nonlocal received, peak
        read = stream.read
        window = session.session.receive_window
        sid = stream.stream_id
        chunk = await read(read_size)
        if not first:
            first.append(time.perf_counter())
            cpu.append(time.process_time())
        while chunk:
            received += len(chunk)
            chunk = await read(read_size)
            if len(chunk) < read_size:  # cheap sampling of the auto-tuned window
                peak = max(peak, window(sid))
        await stream.close()

    if prof:
        prof.enable()
    tasks = [asyncio.create_task(drain(await session.accept_stream())) for _ in range(n_streams)]
    await asyncio.gather(*tasks)
    end = time.perf_counter()
    cpu_s = time.process_time() - cpu[0]
    if prof:
        prof.disable()
    rtt = session.session.rtt
    pipe.send(
        {
            "bytes": received,
            "seconds": end - first[0],
            "recv_cpu": cpu_s,
            "rtt": rtt,
            "window": peak,
        }
    )
    await session.close()
    await transport.close()
    if prof:
        pstats.Stats(prof).sort_stats("tottime").print_stats(18)


def receiver_main(
    scenario: str, n_streams: int, pipe: Connection, profile: bool, read_buffer: int
) -> None:
    asyncio.run(_receiver(scenario, n_streams, pipe, profile, read_buffer))


# -- sender (this process) ----------------------------------------------------------------


async def _send(
    addr: str, scenario: str, total: int, n_streams: int, profile: bool, cpu_used: list[float]
) -> None:
    transport = TcpTransport(TcpOptions())
    conn = await transport.dial(Multiaddr(addr))
    session = YamuxMuxer(options_for(scenario)).new_session(
        conn,  # type: ignore[arg-type]
        is_initiator=True,
    )
    block = bytes(range(256)) * (CHUNK // 256)
    per_stream = total // n_streams
    prof = cProfile.Profile() if profile else None

    tail = block[: per_stream % CHUNK]  # sliced once: the benchmark measures the muxer

    async def push(stream: MuxedStream) -> None:
        for _ in range(per_stream // CHUNK):
            await stream.write(block)
        if tail:
            await stream.write(tail)
        await stream.close_write()
        while await stream.read():
            pass

    if prof:
        prof.enable()
    cpu0 = time.process_time()
    streams = [await session.open_stream() for _ in range(n_streams)]
    await asyncio.gather(*(push(s) for s in streams))
    cpu_used.append(time.process_time() - cpu0)
    if prof:
        prof.disable()
        pstats.Stats(prof).sort_stats("tottime").print_stats(18)
    await session.close()
    await transport.close()


def run_once(
    scenario: str, total: int, n_streams: int, profile: str, read_buffer: int
) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(
        target=receiver_main,
        args=(scenario, n_streams, child, profile == "recv", read_buffer),
        daemon=True,
    )
    proc.start()
    try:
        addr = parent.recv()
        cpu_used: list[float] = []
        asyncio.run(_send(addr, scenario, total, n_streams, profile == "send", cpu_used))
        result: dict[str, Any] = parent.recv()
        result["send_cpu"] = cpu_used[0]
    finally:
        proc.join(60)
        if proc.is_alive():
            proc.kill()
    result["MBps"] = result["bytes"] / result["seconds"] / 1e6
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bytes", default="1GiB", help="total payload per run (default 1GiB)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--streams", type=int, default=1000, help="streams of the 'streams' run")
    ap.add_argument(
        "--scenario", action="append", choices=["fixed", "auto", "streams"], default=None
    )
    ap.add_argument(
        "--read-buffer",
        default=f"{TcpOptions().read_buffer_size // KiB}KiB",
        help="receiver's TCP read buffer (default: p2pkit-tcp's read_buffer_size)",
    )
    ap.add_argument("--profile", choices=["send", "recv"], default="")
    ap.add_argument("--json", action="store_true", help="one JSON object at the end")
    args = ap.parse_args()
    total = parse_size(args.bytes)
    read_buffer = parse_size(args.read_buffer)
    summary: dict[str, Any] = {}
    for scenario in args.scenario or ["fixed", "auto", "streams"]:
        n_streams = args.streams if scenario == "streams" else 1
        rates, times = [], []
        for i in range(args.runs):
            r = run_once(scenario, total, n_streams, args.profile, read_buffer)
            gb = r["bytes"] / 1e9
            rates.append(r["MBps"])
            times.append(r["seconds"])
            print(
                f"{scenario:8} run {i + 1}: {r['bytes'] / 1e6:8.1f} MB in {r['seconds']:6.3f} s"
                f" = {r['MBps']:7.1f} MB/s (streams {n_streams}, rtt {fmt_ms(r['rtt'])},"
                f" peak window {r['window'] // KiB} KiB; CPU s/GB send"
                f" {r['send_cpu'] / gb:.2f} recv {r['recv_cpu'] / gb:.2f})",
                flush=True,
            )
        med = statistics.median(rates)
        summary[scenario] = {"MBps_median": med, "seconds_median": statistics.median(times)}
        print(f"{scenario:8} median: {med:7.1f} MB/s over {args.runs} runs", flush=True)
    if args.json:
        print(json.dumps(summary))


if __name__ == "__main__":
    main()
