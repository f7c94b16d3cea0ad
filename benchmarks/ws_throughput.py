"""WebSocket transport figures, each beside TCP's in the same run.

Why one driver: the WebSocket goals are ratios (p2pkit over /ws against TCP and
against js-libp2p over /ws; idle memory against a TCP connection), and ratios only mean
something when both sides are measured at the same moment on the same machine.

1. ``compare.py`` over the stacks ``tcp+noise+yamux`` and ``ws+noise+yamux`` for the
   pairs p2pkit->p2pkit and js->js, one run per stack at a time, the stacks alternating
   (a whole-stack-then-the-other run let load changes pass for a stack difference):
   upload and download MB/s of one stream, connect ms, first-ping RTT; medians of
   ``--runs`` rounds (every run's values are kept in the JSON record).
2. ``idle_memory.py`` for a TCP listener and a /ws listener, alternating, ``--mem-runs``
   times each: listener RSS per idle connection (Noise + Yamux, identify done).

    python benchmarks/ws_throughput.py [--runs 3] [--bytes 256MiB] [--conns 200] [--mem-runs 3]

Writes ``results/ws-latest.json`` (everything) and prints a summary.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
LISTEN = {"tcp": "/ip4/127.0.0.1/tcp/0", "ws": "/ip4/127.0.0.1/tcp/0/ws"}


STACKS = ("tcp+noise+yamux", "ws+noise+yamux")
PAIRS = ("p2pkit-p2pkit", "js-js")
METRICS = ("upload_MBps", "download_MBps", "connect_ms", "rtt_ms", "latency_ms")


def throughput(runs: int, nbytes: str, out: Path) -> dict[str, Any]:
    """``runs`` rounds of one ``compare.py`` run per stack, the stacks alternating (and
    their order swapped every round), so TCP and WebSocket see the same machine load;
    medians per (stack, pair, metric) over the rounds."""
    values: dict[tuple[str, str], list[dict[str, float]]] = {}
    loads = []
    for i in range(runs):
        order = STACKS if i % 2 == 0 else STACKS[::-1]
        for stack in order:
            run_dir = out / f"run{i + 1}-{stack}"
            argv = [
                sys.executable, str(HERE / "compare.py"), "--no-py", "--runs", "1",
                "--bytes", nbytes, "--stack", stack, "--out", str(run_dir),
                "--max-wait", "300" if i == 0 and stack == order[0] else "0",
                *(x for pair in PAIRS for x in ("--pair", pair)),
            ]  # fmt: skip
            subprocess.run(argv, check=False)
            result = json.loads((run_dir / "latest.json").read_text())
            loads.append(result.get("load"))
            for cell in result["cells"]:
                values.setdefault((cell["stack"], cell["pair"]), []).extend(cell["runs"])
    cells = []
    for (stack, pair), rows in values.items():
        med = {}
        for m in METRICS:
            vals = [r[m] for r in rows if m in r]
            med[m] = round(statistics.median(vals), 3) if vals else None
        cells.append({"stack": stack, "pair": pair, "runs": rows, "median": med})
    return {"cells": cells, "loads": loads}


def idle_memory(conns: int, runs: int) -> dict[str, Any]:
    per: dict[str, list[float]] = {"tcp": [], "ws": []}
    for _ in range(runs):
        for kind in ("tcp", "ws"):  # alternating: both see the same machine load
            argv = [
                sys.executable, str(HERE / "idle_memory.py"), "--conns", str(conns),
                "--procs", "2", "--json", "--listen", LISTEN[kind],
            ]  # fmt: skip
            out = subprocess.run(argv, check=True, capture_output=True, text=True).stdout
            per[kind].append(float(json.loads(out.strip().splitlines()[-1])["per_conn_kib"]))
    med = {k: statistics.median(v) for k, v in per.items()}
    return {"conns": conns, "runs": per, "median_per_conn_kib": med,
            "ws_minus_tcp_kib": round(med["ws"] - med["tcp"], 1)}  # fmt: skip


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--runs", type=int, default=3, help="throughput runs per cell (default 3)")
    p.add_argument("--bytes", default="256MiB", help="bytes per direction (default 256MiB)")
    p.add_argument("--conns", type=int, default=200, help="idle connections (default 200)")
    p.add_argument("--mem-runs", type=int, default=3, help="idle-memory runs per kind")
    args = p.parse_args()
    tp = throughput(args.runs, args.bytes, Path(tempfile.mkdtemp(prefix="ws-throughput-")))
    mem = idle_memory(args.conns, args.mem_runs)
    cells = {(c["stack"], c["pair"]): c["median"] for c in tp["cells"]}
    summary: dict[str, Any] = {}
    for metric in ("upload_MBps", "download_MBps", "connect_ms", "latency_ms"):
        ws = cells.get(("ws+noise+yamux", "p2pkit-p2pkit"), {}).get(metric)
        tcp = cells.get(("tcp+noise+yamux", "p2pkit-p2pkit"), {}).get(metric)
        js = cells.get(("ws+noise+yamux", "js-js"), {}).get(metric)
        summary[metric] = {
            "p2pkit_ws": ws, "p2pkit_tcp": tcp, "js_ws": js,
            "ws_over_tcp": None if not (ws and tcp) else round(ws / tcp, 2),
            "p2pkit_ws_over_js_ws": None if not (ws and js) else round(ws / js, 2),
        }  # fmt: skip
    record = {"summary": summary, "idle_memory": mem, "throughput": tp}
    (RESULTS / "ws-latest.json").write_text(json.dumps(record, indent=1) + "\n")
    for metric, row in summary.items():
        print(f"{metric:14} {json.dumps(row)}")
    print(f"idle RSS per connection (KiB, medians): {json.dumps(mem['median_per_conn_kib'])}, "
          f"ws - tcp = {mem['ws_minus_tcp_kib']} KiB")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
