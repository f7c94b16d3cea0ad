"""Noise throughput over real loopback TCP, sender and receiver in two processes.

    python benchmarks/noise_throughput.py                    # both scenarios, 3 runs each
    python benchmarks/noise_throughput.py --bytes 256MiB --runs 5 --scenario raw
    python benchmarks/noise_throughput.py --direction download   # the listener sends
    python benchmarks/noise_throughput.py --profile recv     # cProfile of the receiver

Directions: ``upload`` (default) = the dialer (Noise initiator, yamux client) sends to
the listener; ``download`` = the listener sends to the dialer.  The listener runs in a
child process, the dialer in this one.

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
import os
import pstats
import statistics
import time
from multiprocessing.connection import Connection
from typing import Any

from multiaddr import Multiaddr

from p2pkit.abc import RawConnection, SecureConnection
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


# -- the two roles (either process) ---------------------------------------------------------


async def _receive(conn: SecureConnection, scenario: str, initiator: bool) -> dict[str, Any]:
    """Receive until EOF; the byte count and the time from the first byte to EOF."""
    if scenario == "raw":
        counter = Counter()
        conn.start_push(counter)
        await counter.done
        return {"bytes": counter.total, "seconds": time.perf_counter() - counter.first}
    from p2pkit_yamux import YamuxMuxer, YamuxOptions

    session = YamuxMuxer(YamuxOptions(keepalive_interval=0)).new_session(
        conn, is_initiator=initiator
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
    await session.close()
    return {"bytes": received, "seconds": end - first}


async def _send(conn: SecureConnection, scenario: str, initiator: bool, total: int) -> None:
    block = bytes(range(256)) * (BLOCK // 256)
    if scenario == "raw":
        left = total
        while left > 0:
            conn.write_nowait(block if left >= BLOCK else block[:left])
            left -= BLOCK
            if conn.write_paused:
                await conn.drain()
        await conn.close_write()
        return
    from p2pkit_yamux import YamuxMuxer, YamuxOptions

    session = YamuxMuxer(YamuxOptions(keepalive_interval=0)).new_session(
        conn, is_initiator=initiator
    )
    stream = await session.open_stream()
    left = total
    while left > 0:
        await stream.write(block if left >= BLOCK else block[:left])
        left -= BLOCK
    await stream.close_write()
    while await stream.read():
        pass
    await session.close()


async def _measured(
    role: str, conn: SecureConnection, scenario: str, total: int, profile: bool
) -> dict[str, Any]:
    """Run ``role`` on ``conn``; add this process's CPU seconds (``cpu``)."""
    cpu0 = time.process_time()
    prof = cProfile.Profile() if profile else None
    if prof:
        prof.enable()
    if role == "recv":
        result = await _receive(conn, scenario, conn.is_initiator)
    else:
        await _send(conn, scenario, conn.is_initiator, total)
        result = {}
    if prof:
        prof.disable()
    result["cpu"] = time.process_time() - cpu0
    if prof:
        pstats.Stats(prof).sort_stats("tottime").print_stats(18)
    return result


def _tcp(role: str, read_buffer: int) -> TcpTransport:
    return TcpTransport(TcpOptions(read_buffer_size=read_buffer) if role == "recv" else None)


# -- listener (child process) -------------------------------------------------------------


async def _listener(
    role: str, scenario: str, total: int, pipe: Connection, profile: bool, read_buffer: int
) -> None:
    transport = _tcp(role, read_buffer)
    security = NoiseSecurity(generate_private_key("ed25519"))
    accepted: asyncio.Future[RawConnection] = asyncio.get_running_loop().create_future()
    listener = await transport.listen(
        Multiaddr("/ip4/127.0.0.1/tcp/0"), lambda c: accepted.set_result(c)
    )
    pipe.send(str(listener.addrs[0]))
    raw = await accepted
    await listener.close()
    conn = await security.secure_inbound(raw, ["/yamux/1.0.0"])
    result = await _measured(role, conn, scenario, total, profile)
    pipe.send(result)
    await conn.close()
    await transport.close()


def pin_to(cpu: int | None) -> None:
    """Keep this process on one CPU (Linux): the two processes then never share a core,
    which removes the scheduler's share of the run-to-run spread."""
    if cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {cpu})


def listener_main(
    role: str,
    scenario: str,
    total: int,
    pipe: Connection,
    profile: bool,
    read_buffer: int,
    cpu: int | None,
) -> None:
    pin_to(cpu)
    asyncio.run(_listener(role, scenario, total, pipe, profile, read_buffer))


# -- dialer (this process) ----------------------------------------------------------------


async def _dialer(
    addr: str, role: str, scenario: str, total: int, profile: bool, read_buffer: int
) -> dict[str, Any]:
    transport = _tcp(role, read_buffer)
    security = NoiseSecurity(generate_private_key("ed25519"))
    raw = await transport.dial(Multiaddr(addr))
    conn = await security.secure_outbound(raw, None, ["/yamux/1.0.0"])
    result = await _measured(role, conn, scenario, total, profile)
    await conn.close()
    await transport.close()
    return result


def run_once(
    scenario: str, direction: str, total: int, profile: str, read_buffer: int, pin: bool = False
) -> dict[str, Any]:
    listener_role = "recv" if direction == "upload" else "send"
    dialer_role = "send" if direction == "upload" else "recv"
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(
        target=listener_main,
        args=(
            listener_role,
            scenario,
            total,
            child,
            profile == listener_role,
            read_buffer,
            1 if pin else None,
        ),
        daemon=True,
    )
    proc.start()
    try:
        addr = parent.recv()
        mine = asyncio.run(
            _dialer(addr, dialer_role, scenario, total, profile == dialer_role, read_buffer)
        )
        theirs: dict[str, Any] = parent.recv()
    finally:
        proc.join(60)
        if proc.is_alive():
            proc.kill()
    recv, send = (theirs, mine) if listener_role == "recv" else (mine, theirs)
    result: dict[str, Any] = {
        "bytes": recv["bytes"],
        "seconds": recv["seconds"],
        "recv_cpu": recv["cpu"],
        "send_cpu": send["cpu"],
    }
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
    ap.add_argument(
        "--direction",
        action="append",
        choices=["upload", "download"],
        default=None,
        help="upload: the dialer sends (default); download: the listener sends",
    )
    ap.add_argument("--profile", choices=["send", "recv"], default="")
    ap.add_argument("--json", action="store_true", help="one JSON object at the end")
    ap.add_argument(
        "--read-buffer",
        default=f"{TcpOptions().read_buffer_size // KiB}KiB",
        help="receiver's TCP read buffer (default: p2pkit-tcp's read_buffer_size)",
    )
    ap.add_argument(
        "--pin",
        action="store_true",
        help="pin the dialer to CPU 0 and the listener to CPU 1 (Linux)",
    )
    args = ap.parse_args()
    if args.pin:
        pin_to(0)
    total = parse_size(args.bytes)
    summary: dict[str, Any] = {}
    cases = [
        (scenario, direction)
        for scenario in args.scenario or ["raw", "yamux"]
        for direction in args.direction or ["upload"]
    ]
    for scenario, direction in cases:
        if scenario == "yamux" and not have_yamux():
            print("yamux    skipped: p2pkit_yamux is not installed", flush=True)
            continue
        name = scenario if direction == "upload" else f"{scenario}-down"
        rates, bounds = [], []
        for i in range(args.runs):
            r = run_once(
                scenario, direction, total, args.profile, parse_size(args.read_buffer), args.pin
            )
            rates.append(r["MBps"])
            bounds.append(r["cpu_bound_MBps"])
            print(
                f"{name:10} run {i + 1}: {r['bytes'] / 1e6:8.1f} MB in {r['seconds']:6.3f} s"
                f" = {r['MBps']:7.1f} MB/s; CPU s/GB send {r['send_cpu_per_GB']:.2f}"
                f" recv {r['recv_cpu_per_GB']:.2f} (CPU-bound {r['cpu_bound_MBps']:.0f} MB/s)",
                flush=True,
            )
        med = statistics.median(rates)
        summary[name] = {
            "MBps_median": med,
            "cpu_bound_MBps_median": statistics.median(bounds),
            "runs": rates,
        }
        print(
            f"{name:10} median: {med:7.1f} MB/s over {args.runs} runs"
            f" (CPU-bound median {statistics.median(bounds):.0f} MB/s)",
            flush=True,
        )
    if args.json:
        print(json.dumps(summary))


if __name__ == "__main__":
    main()
