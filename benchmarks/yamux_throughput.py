"""Yamux throughput over real loopback TCP, sender and receiver in two processes.

Plaintext (raw TCP channel directly under yamux): this measures the muxer, not the
cipher.  MB = 10**6 bytes; the receiver times from its first payload byte to EOF.

    python benchmarks/yamux_throughput.py                 # all scenarios, 3 runs each
    python benchmarks/yamux_throughput.py --bytes 256MiB --runs 5 --scenario auto
    python benchmarks/yamux_throughput.py --profile recv  # cProfile of the receiver

Scenarios: ``fixed`` (one stream, 256 KiB window, no auto-tuning), ``auto`` (one stream,
window auto-tuned up to 16 MiB), ``streams`` (``--streams`` concurrent streams sharing
the same total).  Prints one line per run and the median per scenario.

The receiver accounts its buffered bytes in a resource-manager connection scope with the
default limits, as in a host (``--no-scope``: no accounting).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import pstats
import statistics
import time
from multiprocessing.connection import Connection
from typing import Any

from _loop import add_event_loop_arg, run, select
from _throughput import (
    KiB,
    MiB,
    accept_one,
    add_rates,
    cpu_text,
    median_text,
    parse_size,
    rate_text,
    spawn_pair,
)
from multiaddr import Multiaddr

from p2pkit.abc import MuxedStream
from p2pkit.crypto.ed25519 import Ed25519PrivateKey
from p2pkit.peer import PeerId
from p2pkit.rcmgr import ResourceManager
from p2pkit_tcp import TcpOptions, TcpTransport
from p2pkit_yamux import YamuxMuxer, YamuxOptions

CHUNK = 1 * MiB


def fmt_ms(rtt: float | None) -> str:
    return "n/a" if rtt is None else f"{rtt * 1e3:.2f} ms"


def options_for(scenario: str) -> YamuxOptions:
    if scenario == "fixed":
        return YamuxOptions(max_stream_window=256 * KiB, keepalive_interval=0)
    return YamuxOptions(keepalive_interval=0)


# -- receiver (child process) -------------------------------------------------------------


async def _receiver(
    pipe: Connection, scenario: str, n_streams: int, profile: bool, read_buffer: int, scope: bool
) -> None:
    transport = TcpTransport(TcpOptions(read_buffer_size=read_buffer))
    conn = await accept_one(transport, pipe)
    memory = ResourceManager().open_connection("inbound", None) if scope else None
    if memory is not None:
        memory.set_peer(PeerId.from_public_key(Ed25519PrivateKey.generate().public_key))
    muxer = YamuxMuxer(options_for(scenario))
    session = (
        muxer.new_session(conn, is_initiator=False, memory=memory)  # type: ignore[arg-type]
        if memory is not None
        else muxer.new_session(conn, is_initiator=False)  # type: ignore[arg-type]
    )  # a raw channel is enough for the muxer
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
    pipe: Connection, scenario: str, n_streams: int, profile: bool, read_buffer: int, scope: bool
) -> None:
    run(_receiver(pipe, scenario, n_streams, profile, read_buffer, scope))


# -- sender (this process) ----------------------------------------------------------------


async def _send(addr: str, scenario: str, total: int, n_streams: int, profile: bool) -> float:
    """Send ``total`` bytes over ``n_streams`` streams; this process's CPU seconds for it."""
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
    cpu_used = time.process_time() - cpu0
    if prof:
        prof.disable()
        pstats.Stats(prof).sort_stats("tottime").print_stats(18)
    await session.close()
    await transport.close()
    return cpu_used


def run_once(
    scenario: str, total: int, n_streams: int, profile: str, read_buffer: int, scope: bool = True
) -> dict[str, Any]:
    send_cpu, result = spawn_pair(
        receiver_main,
        (scenario, n_streams, profile == "recv", read_buffer, scope),
        lambda addr: _send(addr, scenario, total, n_streams, profile == "send"),
    )
    result["send_cpu"] = send_cpu
    return add_rates(result)


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
    ap.add_argument("--no-scope", action="store_true", help="receiver accounts no memory")
    ap.add_argument("--json", action="store_true", help="one JSON object at the end")
    add_event_loop_arg(ap)
    args = ap.parse_args()
    select(args.event_loop)
    total = parse_size(args.bytes)
    read_buffer = parse_size(args.read_buffer)
    summary: dict[str, Any] = {}
    for scenario in args.scenario or ["fixed", "auto", "streams"]:
        n_streams = args.streams if scenario == "streams" else 1
        rates, times = [], []
        for i in range(args.runs):
            r = run_once(scenario, total, n_streams, args.profile, read_buffer, not args.no_scope)
            rates.append(r["MBps"])
            times.append(r["seconds"])
            print(
                f"{scenario:8} run {i + 1}: {rate_text(r)} (streams {n_streams},"
                f" rtt {fmt_ms(r['rtt'])}, peak window {r['window'] // KiB} KiB; {cpu_text(r)})",
                flush=True,
            )
        summary[scenario] = {
            "MBps_median": statistics.median(rates),
            "seconds_median": statistics.median(times),
        }
        print(f"{scenario:8} {median_text(rates)}", flush=True)
    if args.json:
        print(json.dumps(summary))


if __name__ == "__main__":
    main()
