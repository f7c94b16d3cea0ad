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

``--streams N`` measures connections that were used before they went idle: after
connecting, each dialer uses its connections one after another; on each it opens N
echo streams (``p2pkit listen`` serves ``/echo/1.0.0``), at most ``--concurrency`` at
a time (default 32), each writing ``--stream-bytes`` (default 1 KiB), half-closing and
reading the echo back in full; then the connection is idle and the RSS is read as
above.  ``--streams 1 --stream-bytes 1048576`` is one large transfer per connection.
The warm-up connections carry the same streams (so the baseline includes what the
first streams import and cache), and ``connect_seconds`` then runs until every dialer
is done with its streams.  ``--listen`` picks another transport (e.g.
``/ip4/127.0.0.1/udp/0/quic-v1``), ``--muxer`` the listener's only muxer (``mplex``).

    python benchmarks/idle_memory.py --conns 1000 --procs 4 [--rounds 3] [--json]
    python benchmarks/idle_memory.py --conns 300 --procs 2 --streams 100 [--stream-bytes 1024]
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
from dataclasses import asdict, dataclass
from typing import Any

from _loop import add_event_loop_arg, cli_args, run, select

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


@dataclass(frozen=True)
class Use:
    """What each connection carries before it goes idle (``--streams`` and friends)."""

    streams: int = 0
    stream_bytes: int = 1024
    concurrency: int = 32

    def argv(self) -> list[str]:
        return [
            *("--streams", str(self.streams)),
            *("--stream-bytes", str(self.stream_bytes)),
            *("--concurrency", str(self.concurrency)),
        ]


async def _echo(conn: Any, nbytes: int, gate: asyncio.Semaphore) -> None:
    from p2pkit.protocols.echo import PROTOCOL_ID as ECHO

    async with gate:
        stream = await conn.new_stream([ECHO])
        payload = os.urandom(nbytes)

        async def writer() -> None:
            await stream.write(payload)
            await stream.close_write()

        async def reader() -> int:
            got = 0
            while data := await stream.read(1 << 20):
                got += len(data)
            return got

        _, got = await asyncio.gather(writer(), reader())
        await stream.close()
    if got != nbytes:
        raise RuntimeError(f"echo: sent {nbytes} bytes, got {got} back")


async def _dialer(addr: str, count: int, use: Use) -> None:
    from p2pkit.builder import HostBuilder

    hosts: list[Any] = []
    try:
        conns = []
        for _ in range(count):
            host = HostBuilder().build()
            await host.start()
            hosts.append(host)
            conns.append(await host.connect(addr))
        for conn in conns:  # one connection at a time: its streams, then it idles
            gate = asyncio.Semaphore(use.concurrency)
            await asyncio.gather(*(_echo(conn, use.stream_bytes, gate) for _ in range(use.streams)))
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


def _spawn_dialers(addr: str, total: int, procs: int, use: Use) -> list[subprocess.Popen[str]]:
    per = [total // procs + (1 if i < total % procs else 0) for i in range(procs)]
    out = []
    for n in per:
        if n:
            argv = [sys.executable, __file__, "--dialer", addr, "--conns", str(n), *use.argv()]
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


def _round(
    addr: str, total: int, procs: int, pid: int, timeout: float, use: Use
) -> tuple[int, float]:
    """Hold ``total`` connections: returns (listener RSS while held, seconds to connect
    and use them)."""
    dialers = _spawn_dialers(addr, total, procs, use)
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
    conns: int,
    procs: int,
    timeout: float,
    rounds: int = 1,
    listen: str | None = None,
    use: Use | None = None,
    muxer: str | None = None,
) -> dict[str, Any]:
    use = use or Use()
    _raise_nofile(conns + 256)
    argv = [sys.executable, "-m", "p2pkit", "listen", *cli_args()]
    if listen is not None:  # e.g. /ip4/127.0.0.1/tcp/0/ws (ws_throughput.py)
        argv += ["--listen", listen]
    if muxer is not None:  # the listener offers only this one; the dialers follow
        argv += ["--muxer", muxer]
    listener = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert listener.stdout is not None
        line = listener.stdout.readline()
        if not line.startswith("LISTEN "):
            raise RuntimeError(f"listener said {line!r}")
        addr = line.split()[1]
        pid = listener.pid
        start_rss = stable_rss(pid)
        _round(addr, WARMUP, 1, pid, timeout, use)
        baseline = stable_rss(pid)
        helds, afters = [], []
        for _ in range(rounds):
            held, took = _round(addr, conns, procs, pid, timeout, use)
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
        "listen": listen,
        "muxer": muxer,
        **asdict(use),
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
    p.add_argument("--muxer", help="the listener's only muxer, e.g. mplex (default: p2pkit's)")
    p.add_argument("--streams", type=int, default=0, help="echo streams per connection first")
    p.add_argument("--stream-bytes", type=int, default=1024, help="bytes per echo stream")
    p.add_argument("--concurrency", type=int, default=32, help="echo streams at a time")
    p.add_argument("--dialer", metavar="MADDR", help=argparse.SUPPRESS)
    add_event_loop_arg(p)
    args = p.parse_args()
    select(args.event_loop)
    if args.conns < 1 or not 1 <= args.procs <= 64 or args.rounds < 1:
        p.error("--conns >= 1, 1 <= --procs <= 64, --rounds >= 1")
    if args.streams < 0 or args.stream_bytes < 0 or args.concurrency < 1:
        p.error("--streams >= 0, --stream-bytes >= 0, --concurrency >= 1")
    use = Use(args.streams, args.stream_bytes, args.concurrency)
    if args.dialer:
        _raise_nofile(args.conns + 256)
        run(_dialer(args.dialer, args.conns, use))
        return 0
    r = measure(args.conns, args.procs, args.timeout, args.rounds, args.listen, use, args.muxer)
    if args.json:
        print(json.dumps(r))
    else:
        if use.streams:
            print(
                f"each connection first carried {use.streams} echo streams of "
                f"{use.stream_bytes} bytes ({use.concurrency} at a time)"
            )
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
