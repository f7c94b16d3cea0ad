"""asyncio's event loop against uvloop, side by side, TCP + Noise + Yamux over loopback.

    python benchmarks/event_loops.py [--runs 5] [--bytes 256MiB] [--setups 50] [--json]

Each run measures both loops, in alternating order, each in a fresh client process
(this script re-run with ``--child``) against a fresh ``p2pkit listen`` process, both on
the loop under test:

* **throughput**: one perf stream, ``--bytes`` up then ``--bytes`` down (MB/s);
* **set-up latency**: ``--setups`` fresh connections, each dial + Noise + Yamux + the
  first ping round trip (ms, median per run);
* **1000-stream echo**: 1000 concurrent ``/echo/1.0.0`` streams of 1 KiB on one
  connection, each written, echoed and read back (ms for all of them).

Each figure also comes as CPU time, of the client and the listener together (CPU s per GB
moved, CPU ms per connection, CPU ms for the 1000 streams): on a shared machine CPU time
moves less than wall-clock time.

Prints per-run figures, then the medians over runs and the uvloop / asyncio ratios, both
as the ratio of the medians and as the median of each run's ratio (the two loops of a
run ran back to back); above 1 is better for uvloop on throughput, below 1 on the
times.  Compare the ratios, not the absolute figures, when the machine is shared.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any

from _loop import CHOICES, cli_args, run, select
from _throughput import parse_size

STREAMS = 1000
STREAM_BYTES = 1024


# -- the child: one loop, one listener, every measurement ------------------------------------


def listener_cpu(pid: int) -> float:
    """CPU seconds (user + system) the listener process has used so far (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Cpu:
    """CPU seconds of both processes (this client and the listener) over a block: less
    moved by other jobs on the machine than wall-clock time."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.seconds = 0.0

    def __enter__(self) -> Cpu:
        self._start = time.process_time() + listener_cpu(self.pid)
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds += time.process_time() + listener_cpu(self.pid) - self._start


async def measure(addr: str, pid: int, nbytes: int, setups: int) -> dict[str, Any]:
    from p2pkit.builder import HostBuilder  # in the child only (the parent stays light)
    from p2pkit.loops import running_loop_name
    from p2pkit.protocols.echo import PROTOCOL_ID as ECHO
    from p2pkit.protocols.perf import PROTOCOL_ID as PERF
    from p2pkit.protocols.perf import perf
    from p2pkit.protocols.ping import PROTOCOL_ID as PING
    from p2pkit.protocols.ping import ping

    def client() -> Any:
        return HostBuilder().transport("tcp").security("noise").muxer("yamux").build()

    out: dict[str, Any] = {"loop": running_loop_name()}
    async with client() as host:  # a warm-up connection first: imports, key material
        conn = await host.connect(addr)
        await ping(await conn.new_stream([PING], lazy=True), 1)
        stream = await conn.new_stream([PERF])
        with Cpu(pid) as cpu:
            result = await perf(stream, nbytes, nbytes)
        out["perf_cpu_s_per_GB"] = cpu.seconds / (2 * nbytes / 1e9)
        out["upload_MBps"] = result.upload_bytes / result.upload_seconds / 1e6
        out["download_MBps"] = result.download_bytes / result.download_seconds / 1e6

        async def echo_one() -> None:
            stream = await conn.new_stream([ECHO])
            await stream.write(b"x" * STREAM_BYTES)
            await stream.close_write()
            got = 0
            while chunk := await stream.read():
                got += len(chunk)
            assert got == STREAM_BYTES, got
            await stream.close()

        with Cpu(pid) as cpu:
            start = time.perf_counter()
            await asyncio.gather(*(echo_one() for _ in range(STREAMS)))
            out["echo_1000_ms"] = (time.perf_counter() - start) * 1000
        out["echo_cpu_ms"] = cpu.seconds * 1000
        await conn.close()
    times = []
    cpu = Cpu(pid)
    for _ in range(setups):  # a fresh host per connection: nothing reused but the listener
        async with client() as host:
            with cpu:
                start = time.perf_counter()
                conn = await host.connect(addr)
                await ping(await conn.new_stream([PING], lazy=True), 1)
                times.append((time.perf_counter() - start) * 1000)
    out["setup_ms"] = statistics.median(times)
    out["setup_cpu_ms"] = cpu.seconds * 1000 / setups  # the listener's closing work too
    return out


def child(nbytes: int, setups: int) -> None:
    argv = [sys.executable, "-m", "p2pkit", "listen", "--security", "noise", "--muxer", "yamux"]
    listener = subprocess.Popen([*argv, *cli_args()], stdout=subprocess.PIPE, text=True)
    try:
        assert listener.stdout is not None
        line = listener.stdout.readline()
        if not line.startswith("LISTEN "):
            raise SystemExit(f"listener did not start: {line!r}")
        result = run(measure(line.split()[1], listener.pid, nbytes, setups))
        print(json.dumps(result), flush=True)
    finally:
        listener.terminate()
        try:
            listener.wait(10)
        except subprocess.TimeoutExpired:
            listener.kill()
            listener.wait()
        if listener.stdout is not None:
            listener.stdout.close()


# -- the parent: alternate the loops, medians and ratios ------------------------------------

KEYS = (
    "upload_MBps",
    "download_MBps",
    "setup_ms",
    "echo_1000_ms",
    "perf_cpu_s_per_GB",
    "setup_cpu_ms",
    "echo_cpu_ms",
)


def one(loop: str, args: argparse.Namespace) -> dict[str, Any]:
    argv = [sys.executable, __file__, "--child", "--event-loop", loop]
    argv += ["--bytes", str(args.bytes), "--setups", str(args.setups)]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=args.timeout)
    if out.returncode != 0:
        raise SystemExit(f"{loop} run failed: {out.stderr.strip()[-2000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    if result["loop"] != loop:
        raise SystemExit(f"asked for {loop}, the child ran on {result['loop']}")
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--bytes", type=parse_size, default=parse_size("256MiB"))
    ap.add_argument("--setups", type=int, default=50, help="connections timed per run")
    ap.add_argument("--timeout", type=float, default=300.0, help="per child process, seconds")
    ap.add_argument("--json", action="store_true", help="one JSON object at the end")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--event-loop", choices=CHOICES, default="asyncio", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        select(args.event_loop)
        child(args.bytes, args.setups)
        return
    runs: dict[str, list[dict[str, Any]]] = {loop: [] for loop in CHOICES}
    for i in range(args.runs):
        order = CHOICES if i % 2 == 0 else CHOICES[::-1]
        for loop in order:
            r = one(loop, args)
            runs[loop].append(r)
            print(f"run {i + 1} {loop:7}: {_figures(r)}", flush=True)
    medians = {
        loop: {k: statistics.median(r[k] for r in rs) for k in KEYS} for loop, rs in runs.items()
    }
    ratios = {k: medians["uvloop"][k] / medians["asyncio"][k] for k in KEYS}
    # Per run, the two loops ran back to back: the median of those ratios is less moved
    # by load that comes and goes over the whole benchmark than the ratio of medians.
    pairs = list(zip(runs["uvloop"], runs["asyncio"], strict=True))
    paired = {k: statistics.median(u[k] / a[k] for u, a in pairs) for k in KEYS}
    for loop in CHOICES:
        print(f"median {loop:7}: {_figures(medians[loop])}")
    print("uvloop / asyncio, ratio of medians: " + _ratios(ratios))
    print("uvloop / asyncio, median of per-run ratios: " + _ratios(paired))
    if args.json:
        summary = {"runs": args.runs, "bytes": args.bytes, "setups": args.setups}
        figures = {"medians": medians, "ratios": ratios, "paired_ratios": paired}
        print(json.dumps({**summary, **figures, "all": runs}))


def _figures(r: dict[str, Any]) -> str:
    return (
        f"upload {r['upload_MBps']:7.1f} MB/s, download {r['download_MBps']:7.1f} MB/s "
        f"(CPU {r['perf_cpu_s_per_GB']:.2f} s/GB), set-up {r['setup_ms']:6.2f} ms "
        f"(CPU {r['setup_cpu_ms']:.2f} ms), {STREAMS}-stream echo {r['echo_1000_ms']:7.1f} ms "
        f"(CPU {r['echo_cpu_ms']:.0f} ms)"
    )


def _ratios(ratios: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.2f}x" for k, v in ratios.items())


if __name__ == "__main__":
    main()
