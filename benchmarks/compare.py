"""Side-by-side benchmark: p2pkit against js-libp2p and py-libp2p, as ratios of medians.

Every implementation runs as real OS processes on loopback (a ``listen`` process plus
one short-lived client process per measurement), all in one run so the figures share
the same machine and the same moment; runs of the different pairs are interleaved
(run 1 of every pair, then run 2, ...) so that a change of machine load hits all pairs
alike.  See benchmarks/README.md for what is measured and how to read the table.

    python benchmarks/compare.py --quick          # smoke run: 1 run, 16 MiB, ~1-2 min
    python benchmarks/compare.py                  # 5 runs, 256 MiB per direction
    python benchmarks/compare.py --stack tcp+noise+yamux --pair p2pkit-p2pkit --pair js-js
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _go import build_go
from _peers import (
    ALL_STACKS,
    HERE,
    JS_DIR,
    STACKS,
    Impl,
    Stack,
    child_env,
    js_impl,
    p2pkit_impl,
)
from _procs import Listener, PeerError, run_json
from _pylibp2p import ensure_pylibp2p
from _report import render_markdown
from _throughput import MiB, parse_size

MIN_BYTES = 4 * MiB
RESULTS = HERE / "results"
#: client -> server pairs, in table order.
ALL_PAIRS = [
    ("p2pkit", "p2pkit"),
    ("js", "js"),
    ("p2pkit", "js"),
    ("js", "p2pkit"),
    ("py-libp2p", "py-libp2p"),
]
METRICS = ("upload_MBps", "download_MBps", "connect_ms", "rtt_ms", "latency_ms")


def pair_name(client: str, server: str) -> str:
    return f"{client}-{server}"


# -- machine and load ------------------------------------------------------------------------


def loadavg() -> float:
    return os.getloadavg()[0]


def wait_for_load(limit: float, max_wait: float) -> dict[str, Any]:
    """Wait (up to ``max_wait`` s) for the 1-minute load average to drop below ``limit``."""
    start = time.monotonic()
    first = loadavg()
    while loadavg() >= limit and time.monotonic() - start < max_wait:
        print(
            f"  load {loadavg():.2f} >= {limit}: waiting "
            f"({time.monotonic() - start:.0f}/{max_wait:.0f} s)",
            flush=True,
        )
        time.sleep(min(15.0, max(0.0, max_wait - (time.monotonic() - start))))
    return {
        "load_at_start_of_wait": round(first, 2),
        "load_when_started": round(loadavg(), 2),
        "waited_s": round(time.monotonic() - start, 1),
        "limit": limit,
    }


def _version(argv: list[str]) -> str | None:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return (out.stdout or out.stderr).strip().splitlines()[0] if out.returncode == 0 else None


def machine_info(py_version: str | None) -> dict[str, Any]:
    js_pkg = JS_DIR / "node_modules" / "libp2p" / "package.json"
    js_version = None
    if js_pkg.exists():
        js_version = json.loads(js_pkg.read_text()).get("version")
    try:
        from importlib.metadata import version

        p2pkit_version: str | None = version("p2pkit")
    except Exception:
        p2pkit_version = None
    return {
        "nproc": os.cpu_count(),
        "cpu": _cpu_model(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "node": _version(["node", "--version"]),
        "p2pkit": p2pkit_version,
        "js-libp2p": js_version,
        "py-libp2p": py_version,
    }


def _cpu_model() -> str | None:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return None


# -- measurements ----------------------------------------------------------------------------


def perf_once(
    impl: Impl, stack: Stack, addr: str, upload: int, download: int, timeout: float
) -> dict[str, Any]:
    """One perf client process; returns bytes, wall seconds of the transfer, connect_ms.

    Why ``upload_seconds + download_seconds``: the implementations split the time
    differently (p2pkit stops the upload clock when its write side is closed, js when
    the first reply byte arrives), but for a one-direction run both sums run from the
    first byte written to the end of the stream, after the other side has consumed
    everything.  That sum is the same quantity for every implementation.
    """
    obj = run_json(
        f"{impl.name} perf",
        impl.perf_argv(stack, addr, upload, download, timeout),
        cwd=impl.cwd,
        env=child_env(),
        timeout=timeout + 15,
    )
    seconds = float(obj["upload_seconds"]) + float(obj["download_seconds"])
    nbytes = int(obj["upload_bytes"]) + int(obj["download_bytes"])
    if nbytes != upload + download:
        raise PeerError(f"{impl.name} perf: moved {nbytes} bytes, expected {upload + download}")
    return {
        "bytes": nbytes,
        "seconds": seconds,
        "MBps": nbytes / 1e6 / seconds,
        "connect_ms": float(obj["connect_ms"]),
    }


def ping_once(impl: Impl, stack: Stack, addr: str, timeout: float) -> dict[str, float]:
    obj = run_json(
        f"{impl.name} ping",
        impl.ping_argv(stack, addr, timeout),
        cwd=impl.cwd,
        env=child_env(),
        timeout=timeout + 15,
    )
    rtt = float(obj["rtt_ms"][0])
    connect = float(obj["connect_ms"])
    return {"connect_ms": connect, "rtt_ms": rtt, "latency_ms": connect + rtt}


def measure_pair(
    client: Impl, stack: Stack, addr: str, nbytes: int, timeout: float
) -> tuple[dict[str, float], list[str]]:
    """Upload-only run, download-only run, one ping: one 'run' of a cell."""
    values: dict[str, float] = {}
    errors: list[str] = []
    try:
        up = perf_once(client, stack, addr, nbytes, 0, timeout)
        values["upload_MBps"] = up["MBps"]
    except PeerError as exc:
        errors.append(f"upload: {exc}")
    try:
        down = perf_once(client, stack, addr, 0, nbytes, timeout)
        values["download_MBps"] = down["MBps"]
    except PeerError as exc:
        errors.append(f"download: {exc}")
    if not client.has_ping:
        return values, errors
    try:
        values.update(ping_once(client, stack, addr, timeout))
    except PeerError as exc:
        errors.append(f"ping: {exc}")
    return values, errors


def median_of(runs: list[dict[str, float]], key: str) -> float | None:
    vals = [r[key] for r in runs if key in r]
    return round(statistics.median(vals), 3) if vals else None


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a is not None and b else None


# -- the run ---------------------------------------------------------------------------------


def next_size(nbytes: int, values: dict[str, float], errors: list[str], target_s: float) -> int:
    """Bytes for the next run of a cell, so a slow pair keeps each transfer near ``target_s``.

    Why: one size for everyone would make a 5 MB/s implementation run for a minute per
    direction (or the fast ones too short to measure).  MB/s does not depend on the size
    once a transfer lasts several seconds, so slow pairs simply move fewer bytes; the
    size of every run is recorded next to its figures.
    """
    rates = [values[k] for k in ("upload_MBps", "download_MBps") if k in values]
    if any("timed out" in e for e in errors) or not rates:
        return max(MIN_BYTES, nbytes // 2)
    fits = int(min(rates) * 1e6 * target_s) // MiB * MiB
    return max(MIN_BYTES, min(nbytes, fits))


def run_stack(
    stack: Stack,
    impls: dict[str, Impl],
    pairs: list[tuple[str, str]],
    runs: int,
    sizes: dict[str, int],
    timeout: float,
    target_s: float,
    log_dir: Path,
    label: str | None = None,
) -> list[dict[str, Any]]:
    """All pairs of one stack: one listener per server implementation, runs interleaved."""
    pairs = [
        (c, s)
        for c, s in pairs
        if c in impls
        and s in impls
        and stack.name in impls[c].stacks
        and stack.name in impls[s].stacks
    ]
    cells: dict[str, dict[str, Any]] = {}
    for c, s in pairs:
        # The slower side of a pair sets the size, so no run goes on for minutes.
        nbytes = min(sizes[c], sizes[s])
        cells[pair_name(c, s)] = {
            "stack": label or stack.name,
            "pair": pair_name(c, s),
            "client": c,
            "server": s,
            "bytes": nbytes,
            "bytes_next": nbytes,
            "runs": [],
            "errors": [],
        }
    servers = sorted({s for _, s in pairs})
    with contextlib.ExitStack() as stack_ctx:
        listeners: dict[str, Listener] = {}
        restarts: dict[str, int] = {}
        for s in servers:
            name = f"{stack.name}.{s}"
            try:
                listeners[s] = stack_ctx.enter_context(
                    Listener(name, impls[s].listen_argv(stack), impls[s].cwd, child_env(), log_dir)
                )
            except PeerError as exc:
                for cell in cells.values():
                    if cell["server"] == s:
                        cell["errors"].append(f"listener: {exc}")
        for i in range(runs):
            for c, s in pairs:
                cell = cells[pair_name(c, s)]
                if s not in listeners:
                    continue
                lst = listeners[s]
                if not lst.alive():
                    # Record why, then carry on with a fresh listener: one dead server
                    # must not void the remaining runs of every pair that uses it.
                    cell["errors"].append(f"run {i + 1}: listener {s} died: {lst.death()}")
                    print(f"  listener {s} died ({lst.death()}); restarting", flush=True)
                    restarts[s] = restarts.get(s, 0) + 1
                    try:
                        lst = listeners[s] = stack_ctx.enter_context(
                            Listener(
                                f"{stack.name}.{s}.{restarts[s]}",
                                impls[s].listen_argv(stack),
                                impls[s].cwd,
                                child_env(),
                                log_dir,
                            )
                        )
                    except PeerError as exc:
                        cell["errors"].append(f"run {i + 1}: restarting listener {s}: {exc}")
                        continue
                t0 = time.monotonic()
                nbytes = cell["bytes_next"]
                values, errors = measure_pair(impls[c], stack, lst.addr, nbytes, timeout)
                cell["runs"].append(
                    {"bytes": nbytes, **{k: round(v, 3) for k, v in values.items()}}
                )
                cell["bytes_next"] = next_size(nbytes, values, errors, target_s)
                cell["errors"].extend(f"run {i + 1}: {e}" for e in errors)
                print(
                    f"  {cell['stack']:22} {cell['pair']:20} run {i + 1}/{runs}: "
                    + " ".join(f"{k}={v:.1f}" for k, v in values.items())
                    + (f"  [{len(errors)} error(s): {errors[0][:120]}]" if errors else "")
                    + f"  ({time.monotonic() - t0:.1f} s)",
                    flush=True,
                )
    out = []
    for cell in cells.values():
        del cell["bytes_next"]
        cell["median"] = {m: median_of(cell["runs"], m) for m in METRICS}
        out.append(cell)
    return out


def compute_ratios(cells: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """p2pkit/js and p2pkit/py-libp2p per stack and metric, from same-implementation pairs."""
    by = {(c["stack"], c["pair"]): c["median"] for c in cells}
    out = []
    names = [s.name for s in ALL_STACKS]
    for stack in sorted({c["stack"] for c in cells if c["stack"] in names}, key=names.index):
        mine = by.get((stack, "p2pkit-p2pkit"))
        for other in ("js-js", "py-libp2p-py-libp2p"):
            theirs = by.get((stack, other))
            if mine is None or theirs is None:
                continue
            out.append(
                {
                    "stack": stack,
                    "vs": other.split("-")[0] if other == "js-js" else "py-libp2p",
                    **{m: ratio(mine[m], theirs[m]) for m in METRICS},
                }
            )
    return out


GO_STACK = next(s for s in STACKS if s.name == "tcp+plaintext+yamux")
GO_LABEL = "go: tcp+plaintext+yamux"


def run_go(args: argparse.Namespace, go_impls: list[Impl], log_dir: Path) -> list[dict[str, Any]]:
    """p2pkit tcp+plaintext+yamux vs hashicorp/yamux (plain yamux over TCP), ``--go-bytes``.

    The Go side has no security handshake and no multistream-select: it is the muxer
    alone, so this compares p2pkit's whole plaintext stack against a bare Go muxer.
    """
    print(f"== {GO_LABEL}", flush=True)
    impls = {"p2pkit": p2pkit_impl(), **{g.name: g for g in go_impls}}
    pairs = [("p2pkit", "p2pkit")] + [(g.name, g.name) for g in go_impls]
    sizes = {name: args.go_bytes for name in impls}
    return run_stack(
        GO_STACK,
        impls,
        pairs,
        args.runs,
        sizes,
        args.timeout,
        args.target_seconds,
        log_dir,
        label=GO_LABEL,
    )


def compute_go_ratios(cells: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """p2pkit / hashicorp yamux throughput for each Go window size."""
    mine = next((c["median"] for c in cells if c["client"] == "p2pkit"), None)
    out = []
    for cell in cells:
        if cell["client"] == "p2pkit" or mine is None:
            continue
        theirs = cell["median"]
        out.append(
            {
                "stack": GO_LABEL,
                "vs": cell["client"],
                **{m: ratio(mine[m], theirs[m]) for m in ("upload_MBps", "download_MBps")},
            }
        )
    return out


def _exit_on_signal(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--quick",
        action="store_true",
        help="1 run, 16 MiB per direction, no load wait (for development)",
    )
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument(
        "--bytes",
        type=parse_size,
        default=256 * MiB,
        help="bytes per direction for p2pkit and js (default 256MiB)",
    )
    ap.add_argument(
        "--py-bytes",
        type=parse_size,
        default=128 * MiB,
        help="bytes per direction when py-libp2p is in the pair (default 128MiB)",
    )
    ap.add_argument(
        "--target-seconds",
        type=float,
        default=10.0,
        help="after a run, slow pairs move fewer bytes so one direction takes about this long",
    )
    ap.add_argument(
        "--stack",
        action="append",
        choices=[s.name for s in ALL_STACKS],
        help="only these stacks (repeatable; default: every TCP stack; ws+noise+yamux when named)",
    )
    ap.add_argument(
        "--pair",
        action="append",
        choices=[pair_name(c, s) for c, s in ALL_PAIRS],
        help="only these client-server pairs (repeatable; default all)",
    )
    ap.add_argument(
        "--go",
        action="store_true",
        help="also compare p2pkit tcp+plaintext+yamux with Go's hashicorp/yamux (needs go)",
    )
    ap.add_argument(
        "--go-bytes",
        type=parse_size,
        default=1024 * MiB,
        help="bytes per direction for the --go comparison (default 1GiB)",
    )
    ap.add_argument("--no-py", action="store_true", help="skip py-libp2p (no venv set-up)")
    ap.add_argument("--timeout", type=float, default=60.0, help="per client process, seconds")
    ap.add_argument(
        "--load-limit",
        type=float,
        default=1.5,
        help="wait for the 1-minute load average to drop below this",
    )
    ap.add_argument("--max-wait", type=float, default=300.0, help="longest wait for load, s")
    ap.add_argument(
        "--out", type=Path, default=RESULTS, help="directory for latest.json / latest.md"
    )
    args = ap.parse_args(argv)
    # SIGTERM (e.g. from `timeout`) unwinds like Ctrl-C, so every peer process is killed.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    if args.quick:
        args.runs, args.bytes, args.py_bytes, args.go_bytes = 1, 16 * MiB, 16 * MiB, 64 * MiB
        args.max_wait = 0.0

    if shutil.which("node") is None:
        print("error: node is not on PATH (needed for the js-libp2p peer)", file=sys.stderr)
        return 2
    if not (JS_DIR / "node_modules").is_dir():
        print("installing the pinned js-libp2p peer (npm ci)...", flush=True)
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund"], cwd=JS_DIR, check=True, timeout=600
        )

    stacks = [s for s in ALL_STACKS if s.name in args.stack] if args.stack else STACKS
    pairs = [p for p in ALL_PAIRS if not args.pair or pair_name(*p) in args.pair]
    notes: list[str] = []
    impls: dict[str, Impl] = {"p2pkit": p2pkit_impl(), "js": js_impl()}
    py_version = None
    if args.no_py:
        notes.append("py-libp2p skipped (--no-py)")
    elif any("py-libp2p" in p for p in pairs):
        py, py_version, note = ensure_pylibp2p()
        if py is not None:
            impls["py-libp2p"] = py
        if note:
            notes.append(note)
            print(f"py-libp2p: {note}", flush=True)
    sizes = {"p2pkit": args.bytes, "js": args.bytes, "py-libp2p": args.py_bytes}
    go_impls: list[Impl] = []
    if args.go:
        go_impls, note = build_go()
        if note:
            notes.append(note)
            print(note, flush=True)

    print("waiting for a quiet machine..." if args.max_wait else "", flush=True)
    load = wait_for_load(args.load_limit, args.max_wait)
    if load["load_when_started"] >= args.load_limit:
        notes.append(
            f"1-minute load average was {load['load_when_started']} (>= "
            f"{args.load_limit}) when the measurements started: figures are noisy"
        )
    started = dt.datetime.now(dt.UTC)
    log_dir = Path(tempfile.mkdtemp(prefix="p2pkit-bench-"))
    print(f"listener logs: {log_dir}", flush=True)
    cells: list[dict[str, Any]] = []
    for stack in stacks:
        print(f"== {stack.name}", flush=True)
        cells += run_stack(
            stack, impls, pairs, args.runs, sizes, args.timeout, args.target_seconds, log_dir
        )
    go_ratios: list[dict[str, Any]] = []
    if go_impls:
        go_cells = run_go(args, go_impls, log_dir)
        go_ratios = compute_go_ratios(go_cells)
        cells += go_cells
    finished = dt.datetime.now(dt.UTC)
    result = {
        "date": started.isoformat(timespec="seconds"),
        "duration_s": round((finished - started).total_seconds(), 1),
        "machine": machine_info(py_version),
        "load": {**load, "load_at_end": round(loadavg(), 2)},
        "config": {
            "runs": args.runs,
            "bytes": args.bytes,
            "py_bytes": args.py_bytes,
            "quick": args.quick,
            "timeout_s": args.timeout,
            "target_seconds": args.target_seconds,
            "go_bytes": args.go_bytes if args.go else None,
        },
        "notes": notes,
        "cells": cells,
        "ratios": compute_ratios(cells),
        "go_ratios": go_ratios,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "latest.json").write_text(json.dumps(result, indent=1) + "\n")
    md = render_markdown(result)
    (args.out / "latest.md").write_text(md)
    print()
    print(md)
    return 0 if all(not c["errors"] for c in cells) else 1


if __name__ == "__main__":
    sys.exit(main())
