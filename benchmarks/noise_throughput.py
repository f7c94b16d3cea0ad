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
import cProfile
import json
import os
import pstats
import statistics
import time
from multiprocessing.connection import Connection
from typing import Any

from _loop import add_event_loop_arg, run, select
from _throughput import (
    Counter,
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

from p2pkit.abc import SecureConnection
from p2pkit.crypto import generate_private_key
from p2pkit_noise import NoiseSecurity
from p2pkit_tcp import TcpOptions, TcpTransport

BLOCK = 1 * MiB


def have_yamux() -> bool:
    try:
        import p2pkit_yamux  # noqa: F401
    except ImportError:
        return False
    return True


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
    pipe: Connection, role: str, scenario: str, total: int, profile: bool, read_buffer: int
) -> None:
    transport = _tcp(role, read_buffer)
    security = NoiseSecurity(generate_private_key("ed25519"))
    raw = await accept_one(transport, pipe)
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
    pipe: Connection,
    role: str,
    scenario: str,
    total: int,
    profile: bool,
    read_buffer: int,
    cpu: int | None,
) -> None:
    pin_to(cpu)
    run(_listener(pipe, role, scenario, total, profile, read_buffer))


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
    mine, theirs = spawn_pair(
        listener_main,
        (listener_role, scenario, total, profile == listener_role, read_buffer, 1 if pin else None),
        lambda addr: _dialer(
            addr, dialer_role, scenario, total, profile == dialer_role, read_buffer
        ),
    )
    recv, send = (theirs, mine) if listener_role == "recv" else (mine, theirs)
    return add_rates(
        {
            "bytes": recv["bytes"],
            "seconds": recv["seconds"],
            "recv_cpu": recv["cpu"],
            "send_cpu": send["cpu"],
        }
    )


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
    add_event_loop_arg(ap)
    args = ap.parse_args()
    select(args.event_loop)
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
                f"{name:10} run {i + 1}: {rate_text(r)}; {cpu_text(r)}"
                f" (CPU-bound {r['cpu_bound_MBps']:.0f} MB/s)",
                flush=True,
            )
        summary[name] = {
            "MBps_median": statistics.median(rates),
            "cpu_bound_MBps_median": statistics.median(bounds),
            "runs": rates,
        }
        print(
            f"{name:10} {median_text(rates)}"
            f" (CPU-bound median {statistics.median(bounds):.0f} MB/s)",
            flush=True,
        )
    if args.json:
        print(json.dumps(summary))


if __name__ == "__main__":
    main()
