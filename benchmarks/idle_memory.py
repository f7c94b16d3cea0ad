"""Listener memory per idle connection, and whether it comes back after they close.

Why a benchmark of its own: a libp2p node spends most of its life holding many idle
connections, so what one idle connection costs (and whether the memory returns once it
is gone) matters as much as throughput.  Small and self-contained on purpose.

What it does: starts ``python -m p2pkit listen`` (default configuration: TCP + Noise +
Yamux) in its own process, warms it up with a few connections, then reads its RSS
(baseline); ``--procs`` dialer processes open ``--conns`` connections in total, each
from a distinct identity (one host per connection), handshake (Noise + Yamux, identify)
complete, then idle; RSS again (with N); then the dialers close everything and RSS is
read a third time (after close).  RSS readings wait until the figure is stable.
``--rounds N`` repeats the hold-and-close N times (memory kept must not grow).

    python benchmarks/idle_memory.py --conns 1000 --procs 4 [--rounds 3] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import signal
import subprocess
import sys
import time
from typing import Any

WARMUP = 4
"""Connections opened and closed before the baseline (first-use imports and caches)."""


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def stable_rss(pid: int, *, settle: float = 1.0, timeout: float = 30.0) -> int:
    """RSS once two readings ``settle`` seconds apart differ by < 0.5 %."""
    deadline = time.monotonic() + timeout
    last = rss_kib(pid)
    while time.monotonic() < deadline:
        time.sleep(settle)
        now = rss_kib(pid)
        if abs(now - last) <= max(64, last // 200):
            return now
        last = now
    return last


# -- dialer process ----------------------------------------------------------------------------


async def _dialer(addr: str, count: int) -> None:
    from p2pkit.builder import HostBuilder

    hosts: list[Any] = []
    try:
        for _ in range(count):
            host = HostBuilder().build()
            await host.start()
            hosts.append(host)
            await host.connect(addr)
        print("READY", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    finally:
        await asyncio.gather(*(h.stop() for h in hosts), return_exceptions=True)
    print("CLOSED", flush=True)


# -- driver --------------------------------------------------------------------------------------


def _raise_nofile(need: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, need))
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def _spawn_dialers(addr: str, total: int, procs: int) -> list[subprocess.Popen[str]]:
    per = [total // procs + (1 if i < total % procs else 0) for i in range(procs)]
    out = []
    for n in per:
        if n:
            argv = [sys.executable, __file__, "--dialer", addr, "--conns", str(n)]
            out.append(
                subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            )
    return out


def _wait_line(proc: subprocess.Popen[str], want: str, timeout: float) -> None:
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"dialer exited (code {proc.wait()}) before {want}")
        if line.strip() == want:
            return
    raise RuntimeError(f"dialer: no {want} within {timeout} s")


def _round(addr: str, total: int, procs: int, pid: int, timeout: float) -> tuple[int, float]:
    """Hold ``total`` connections: returns (listener RSS while held, seconds to connect)."""
    dialers = _spawn_dialers(addr, total, procs)
    try:
        t0 = time.monotonic()
        for d in dialers:
            _wait_line(d, "READY", timeout)
        took = time.monotonic() - t0
        held = stable_rss(pid)
        for d in dialers:
            assert d.stdin is not None
            d.stdin.write("close\n")
            d.stdin.flush()
        for d in dialers:
            _wait_line(d, "CLOSED", timeout)
            d.wait(timeout)
        return held, took
    finally:
        for d in dialers:
            if d.poll() is None:
                d.kill()
                d.wait()


def measure(
    conns: int, procs: int, timeout: float, rounds: int = 1, listen: str | None = None
) -> dict[str, Any]:
    _raise_nofile(conns + 256)
    argv = [sys.executable, "-m", "p2pkit", "listen"]
    if listen is not None:  # e.g. /ip4/127.0.0.1/tcp/0/ws (ws_throughput.py)
        argv += ["--listen", listen]
    listener = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert listener.stdout is not None
        line = listener.stdout.readline()
        if not line.startswith("LISTEN "):
            raise RuntimeError(f"listener said {line!r}")
        addr = line.split()[1]
        pid = listener.pid
        start_rss = stable_rss(pid)
        _round(addr, WARMUP, 1, pid, timeout)
        baseline = stable_rss(pid)
        helds, afters = [], []
        for _ in range(rounds):
            held, took = _round(addr, conns, procs, pid, timeout)
            time.sleep(2.0)  # closes linger briefly; the listener trims after a second
            helds.append(held)
            afters.append(stable_rss(pid))
        held, after = helds[0], afters[0]
    finally:
        try:
            os.killpg(listener.pid, signal.SIGTERM)
            listener.wait(10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(listener.pid, signal.SIGKILL)
            listener.wait()
    return {
        "conns": conns,
        "procs": procs,
        "listener_start_kib": start_rss,
        "baseline_kib": baseline,
        "with_conns_kib": held,
        "after_close_kib": after,
        "per_conn_kib": round((held - baseline) / conns, 1),
        "after_close_over_baseline_kib": after - baseline,
        "returned": after <= baseline * 1.10 + 5 * 1024,
        "connect_seconds": round(took, 2),
        "rounds_with_conns_kib": helds,
        "rounds_after_close_kib": afters,
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--conns", type=int, default=200, help="idle connections held (default 200)")
    p.add_argument("--procs", type=int, default=2, help="dialer processes (default 2)")
    p.add_argument("--rounds", type=int, default=1, help="hold and close N times (default 1)")
    p.add_argument("--timeout", type=float, default=300.0, help="per-phase timeout, seconds")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--listen", metavar="MADDR", help="listener address (default: p2pkit's)")
    p.add_argument("--dialer", metavar="MADDR", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.conns < 1 or not 1 <= args.procs <= 64 or args.rounds < 1:
        p.error("--conns >= 1, 1 <= --procs <= 64, --rounds >= 1")
    if args.dialer:
        _raise_nofile(args.conns + 256)
        asyncio.run(_dialer(args.dialer, args.conns))
        return 0
    r = measure(args.conns, args.procs, args.timeout, args.rounds, args.listen)
    if args.json:
        print(json.dumps(r))
    else:
        print(
            f"listener RSS: baseline {r['baseline_kib'] / 1024:.1f} MiB, "
            f"with {r['conns']} idle connections {r['with_conns_kib'] / 1024:.1f} MiB "
            f"({r['per_conn_kib']} KiB per connection), "
            f"after close {r['after_close_kib'] / 1024:.1f} MiB "
            f"({'returned' if r['returned'] else 'NOT returned'}: "
            f"{r['after_close_over_baseline_kib']:+d} KiB over baseline)"
        )
        if args.rounds > 1:
            per_round = [round(k / 1024, 1) for k in r["rounds_after_close_kib"]]
            print(f"after close, per round: {per_round} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
