"""Scale benchmark: a listener under many connections, churn, set-up latency, import.

The listener (p2pkit, js-libp2p or py-libp2p) runs in its own process and is dialled
the same way for every implementation, by p2pkit dialer processes
(``_scale_dialer.py``), one identity per connection; what is measured is the
listener process as the kernel sees it (/proc/<pid>/status VmRSS, /proc/<pid>/stat
utime + stime).  See benchmarks/README.md ("Scale") for every figure.

    python benchmarks/scale.py --quick                    # smoke run, < 1 min
    python benchmarks/scale.py                            # default sizes
    python benchmarks/scale.py --scenario idle --conns 10000 --impl p2pkit --impl js
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _loop import add_event_loop_arg, select
from _peers import HERE, JS_DIR, Impl, Stack, child_env, js_impl, p2pkit_impl
from _procs import Listener, PeerError, run_json
from _scale_proc import (
    LineProc,
    cpu_seconds,
    drain_stdout,
    mem_available_mib,
    raise_nofile,
    real_pid,
    rss_kib,
    socket_count,
    status_kib,
)
from _scale_report import render_markdown

RESULTS = HERE / "results"
DIALER = HERE / "_scale_dialer.py"
STACK = Stack("noise", "yamux")
SCENARIOS = ("idle", "churn", "setup", "echo", "import")
IMPLS = ("p2pkit", "js", "py-libp2p")
#: Implementations whose listener serves /echo/1.0.0 (the py-libp2p peer does not).
ECHO_IMPLS = ("p2pkit", "js")
#: Implementation modules a freshly built default host must not have imported: every
#: security protocol and muxer is imported when a connection first negotiates it
#: (p2pkit.deferred); the plugin packages themselves are import-light.
WATCHED_MODULES = (
    "OpenSSL",
    "cryptography.x509",
    "noise",
    "p2pkit_tls.handshake",
    "p2pkit_noise.handshake",
    "p2pkit_yamux.shell",
    "p2pkit_mplex.shell",
)


# -- listeners -------------------------------------------------------------------------------


def p2pkit_listener_config(log_dir: Path, conns: int) -> Path:
    """The default configuration, except that the connection manager's watermarks sit
    above the number of connections held (its defaults, 160/192, would trim them: the
    benchmark measures holding connections, not trimming them)."""
    water = max(conns, 1) * 2 + 1000
    path = log_dir / "p2pkit-listener.toml"
    path.write_text(f"[p2pkit.connection_manager]\nlow_water = {water}\nhigh_water = {water}\n")
    return path


def listener_argv(impl: Impl, log_dir: Path, conns: int) -> list[str]:
    if impl.name == "p2pkit":
        cfg = p2pkit_listener_config(log_dir, conns)
        return [*impl.base, "listen", "--listen", "/ip4/127.0.0.1/tcp/0", "--config", str(cfg),
                *impl.loop_args]
    if impl.name == "py-libp2p":
        return [*impl.listen_argv(STACK), "--max-connections", str(max(conns, 1) * 2 + 1000)]
    return impl.listen_argv(STACK)


class Served:
    """A listener process plus what scale.py reads of it."""

    def __init__(self, impl: Impl, log_dir: Path, conns: int, tag: str) -> None:
        self.impl = impl
        self.listener = Listener(
            f"{tag}.{impl.name}",
            listener_argv(impl, log_dir, conns),
            impl.cwd,
            child_env(),
            log_dir,
        )
        self.pid = 0

    def __enter__(self) -> Served:
        self.listener.__enter__()
        drain_stdout(self.listener)
        assert self.listener.proc is not None
        self.pid = real_pid(self.listener.proc.pid)
        return self

    def __exit__(self, *exc: object) -> None:
        self.listener.close()

    @property
    def addr(self) -> str:
        return self.listener.addr

    def rss(self) -> int:
        if not self.listener.alive():
            raise PeerError(f"listener {self.impl.name} died: {self.listener.death()}")
        return rss_kib(self.pid)


def mib(kib: float) -> float:
    return round(kib / 1024, 1)


def dialer_argv(op: str, addr: str, *extra: str) -> list[str]:
    return [sys.executable, str(DIALER), op, addr, *extra]


# -- scenarios -------------------------------------------------------------------------------


def scenario_idle(args: argparse.Namespace, impl: Impl, log_dir: Path) -> dict[str, Any]:
    """N connections held idle from ``--dialers`` processes; RSS before/after/closed,
    CPU while idle, one ping on every connection at the end."""
    n = args.conns
    out: dict[str, Any] = {"conns": n}
    with Served(impl, log_dir, n, "idle") as srv, contextlib.ExitStack() as procs:
        time.sleep(args.settle)
        base = srv.rss()
        sockets0 = socket_count(srv.pid)
        out["baseline_kib"] = base
        shares = [n // args.dialers + (i < n % args.dialers) for i in range(args.dialers)]
        dialers: list[LineProc] = []
        t0 = time.monotonic()
        for i, share in enumerate(s for s in shares if s > 0):
            d = LineProc(
                f"dialer{i}",
                dialer_argv(
                    "hold", srv.addr, "--conns", str(share), "--concurrency", str(args.concurrency)
                ),
                child_env(),
                log_dir / f"idle.{impl.name}.dialer{i}.log",
            )
            procs.callback(d.close)
            dialers.append(d)
        guard = memory_guard(args.min_available_mib, srv)
        ready = [d.expect("READY", args.ramp_timeout + n * 0.2, guard) for d in dialers]
        out["ramp_s"] = round(time.monotonic() - t0, 1)
        out["connected"] = sum(r["connected"] for r in ready)
        out["failed"] = sum(r["failed"] for r in ready)
        out["dial_errors"] = merge_counts(r["errors"] for r in ready)
        time.sleep(args.settle)
        held = srv.rss()
        out["held_kib"] = held
        out["held_status_kib"] = status_kib(srv.pid)
        out["sockets_held"] = socket_count(srv.pid) - sockets0
        out["per_conn_kib"] = round((held - base) / max(out["connected"], 1), 1)
        cpu0, w0 = cpu_seconds(srv.pid), time.monotonic()
        time.sleep(args.idle_seconds)
        cpu1, w1 = cpu_seconds(srv.pid), time.monotonic()
        out["idle_cpu_s"] = round(cpu1 - cpu0, 3)
        out["idle_wall_s"] = round(w1 - w0, 2)
        out["idle_cpu_pct"] = round(100 * (cpu1 - cpu0) / (w1 - w0), 2)
        out["after_idle_kib"] = srv.rss()
        for d in dialers:
            d.send("ping")
        pinged = [d.expect("PINGED", 60 + n * 0.05) for d in dialers]
        out["ping_ok"] = sum(p["ok"] for p in pinged)
        out["ping_failed"] = sum(p["failed"] for p in pinged)
        out["ping_errors"] = merge_counts(p["errors"] for p in pinged)
        out["ping_s"] = round(max(p["seconds"] for p in pinged), 2)
        for d in dialers:
            d.send("close")
        for d in dialers:
            d.expect("CLOSED", 60 + n * 0.05)
            d.wait(10)
        # Closed means the listener has let go of the sockets, then settled.
        wait_until(lambda: socket_count(srv.pid) <= sockets0, 30.0)
        out["sockets_left"] = socket_count(srv.pid) - sockets0
        time.sleep(args.settle)
        closed = srv.rss()
        out["closed_kib"] = closed
        out["returned"] = closed <= base * 1.10 + 5 * 1024
    return out


def scenario_churn(args: argparse.Namespace, impl: Impl, log_dir: Path) -> dict[str, Any]:
    """M sequential connections from fresh identities; RSS at every 10 %."""
    m = args.churn
    step = max(m // 10, 1)
    checkpoints = list(range(step, m + 1, step))
    if checkpoints[-1] != m:
        checkpoints.append(m)
    out: dict[str, Any] = {"count": m}
    with Served(impl, log_dir, m, "churn") as srv:
        time.sleep(args.settle)
        out["baseline_kib"] = srv.rss()
        d = LineProc(
            "churn",
            dialer_argv(
                "churn",
                srv.addr,
                "--count",
                str(m),
                "--checkpoints",
                ",".join(str(c) for c in checkpoints),
            ),
            child_env(),
            log_dir / f"churn.{impl.name}.dialer.log",
        )
        try:
            curve: list[list[int]] = []
            guard = memory_guard(args.min_available_mib, srv)
            try:
                for c in checkpoints:
                    d.expect("AT", args.ramp_timeout + step * 2.0, guard)
                    time.sleep(args.churn_settle)
                    curve.append([c, srv.rss()])
                    d.send("go")
                done = d.expect("DONE", 60)
            except PeerError as exc:
                raise PeerError(f"after {curve[-1:]} [visits, RSS KiB]: {exc}") from exc
        finally:
            d.close()
        out["curve_kib"] = curve
        first, last = curve[0], curve[-1]
        out["first_n"] = first[0]
        out["after_first_kib"] = first[1]
        out["end_kib"] = last[1]
        out["growth_per_conn_kib"] = (
            round((last[1] - first[1]) / (last[0] - first[0]), 2) if last[0] > first[0] else None
        )
        out.update(
            {k: done[k] for k in ("ok", "failed", "identified", "median_total_ms", "seconds")}
        )
        out["errors"] = done["errors"]
    return out


def scenario_setup(args: argparse.Namespace, impl: Impl, log_dir: Path) -> dict[str, Any]:
    """K fresh connections, one after the other, from one other process."""
    with Served(impl, log_dir, 16, "setup") as srv:
        time.sleep(args.settle)
        d = LineProc(
            "setup",
            dialer_argv("setup", srv.addr, "--count", str(args.setup)),
            child_env(),
            log_dir / f"setup.{impl.name}.dialer.log",
        )
        try:
            done = d.expect("DONE", 60 + args.setup * 2.0)
        finally:
            d.close()
    keys = ("count", "ok", "failed", "median_connect_ms", "median_rtt_ms", "median_total_ms")
    return {**{k: done[k] for k in keys}, "errors": done["errors"]}


def echo_argv(client: Impl, addr: str, args: argparse.Namespace) -> list[str]:
    argv = [*client.base, "echo", addr, "--streams", str(args.echo_streams), "--bytes", "1024"]
    argv += ["--security", "noise", "--muxer", "yamux", "--timeout", "60"]
    return argv + (["--json"] if client.name == "p2pkit" else [])


def scenario_echo(
    args: argparse.Namespace, impl: Impl, log_dir: Path, clients: list[Impl]
) -> dict[str, Any]:
    """``--echo-streams`` concurrent 1 KiB echo streams on one connection, per client."""
    out: dict[str, Any] = {"streams": args.echo_streams}
    with Served(impl, log_dir, 16, "echo") as srv:
        time.sleep(args.settle)
        for client in clients:
            runs: list[float] = []
            errors: list[str] = []
            for _ in range(args.echo_runs):
                try:
                    obj = run_json(
                        f"{client.name} echo",
                        echo_argv(client, srv.addr, args),
                        cwd=client.cwd,
                        env=child_env(),
                        timeout=90,
                    )
                    runs.append(float(obj["seconds"]))
                except PeerError as exc:
                    errors.append(str(exc)[:200])
            out[f"from_{client.name}"] = {
                "runs_s": runs,
                "median_s": round(statistics.median(runs), 4) if runs else None,
                "errors": errors,
            }
    return out


IMPORT_CODE = """
import json, sys, time
t0 = time.perf_counter()
import p2pkit
from p2pkit.config import HostBuilder
host = HostBuilder().build()
t1 = time.perf_counter()
print(json.dumps({"seconds": t1 - t0, "modules": sorted(m for m in %r if m in sys.modules)}))
"""


def scenario_import(args: argparse.Namespace) -> dict[str, Any]:
    """``import p2pkit`` + a default host, in a fresh interpreter, median of runs.

    One untimed run first, with bytecode writing allowed: an installed package has its
    ``.pyc`` files (pip compiles them), so without it an environment that sets
    PYTHONDONTWRITEBYTECODE would time the compiler on every run instead of the import.
    """
    inner: list[float] = []
    walls: list[float] = []
    bare: list[float] = []
    modules: list[str] = []
    code = IMPORT_CODE % (WATCHED_MODULES,)
    warm_env = child_env()
    warm_env.pop("PYTHONDONTWRITEBYTECODE", None)
    run_json("import", [sys.executable, "-c", code], cwd=None, env=warm_env, timeout=60)
    for _ in range(args.import_runs):
        t0 = time.perf_counter()
        obj = run_json(
            "import", [sys.executable, "-c", code], cwd=None, env=child_env(), timeout=60
        )
        walls.append(time.perf_counter() - t0)
        inner.append(float(obj["seconds"]))
        modules = list(obj["modules"])
        t0 = time.perf_counter()
        run_json(
            "bare", [sys.executable, "-c", "print('{}')"], cwd=None, env=child_env(), timeout=60
        )
        bare.append(time.perf_counter() - t0)
    return {
        "runs": args.import_runs,
        "median_s": round(statistics.median(inner), 4),
        "runs_s": [round(x, 4) for x in inner],
        "median_process_s": round(statistics.median(walls), 4),
        "median_bare_python_s": round(statistics.median(bare), 4),
        "modules": modules,
        "watched_modules": list(WATCHED_MODULES),
    }


# -- helpers ---------------------------------------------------------------------------------


def merge_counts(dicts: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for d in dicts:
        for k, v in d.items():
            out[k] = out.get(k, 0) + int(v)
    return out


def shortfall(name: str, res: dict[str, Any]) -> str | None:
    """Why a measurement did not do all it should (its figures are kept, flagged)."""
    if name == "idle":
        n = res["conns"]
        if res["connected"] < n or res["sockets_held"] < n or res["ping_ok"] < n:
            return (
                f"{res['connected']} of {n} connected, {res['sockets_held']} sockets held, "
                f"{res['ping_ok']} answered the ping; errors {res['dial_errors']} "
                f"{res['ping_errors']}"
            )[:400]
    elif name in ("churn", "setup") and res["failed"]:
        return f"{res['failed']} of {res['count']} visits failed: {res['errors']}"[:400]
    elif name == "echo":
        errors = [e for v in res.values() if isinstance(v, dict) for e in v["errors"]]
        if errors:
            return "; ".join(errors)[:400]
    return None


def carry_over(previous: dict[str, Any], records: dict[str, Any]) -> dict[str, Any]:
    """Keep earlier figures (and failures) of listeners this run did not measure in the
    same scenario and size (a js-only re-run keeps p2pkit's), each marked with its date."""
    out = {}
    for key, rec in records.items():
        old = previous.get(key)
        if old is not None:
            measured = set(rec["results"]) | set(rec["errors"])
            when = old.get("carried_over", {})
            for field in ("results", "errors"):
                for impl, value in old.get(field, {}).items():
                    if impl not in measured:
                        rec[field][impl] = value
                        rec.setdefault("carried_over", {})[impl] = when.get(impl, old["date"])
        out[key] = rec
    return out


def wait_until(cond: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.2)
    return cond()


def memory_guard(min_mib: int, srv: Served) -> Callable[[], str | None]:
    """Abort a ramp when the machine runs short of memory or the listener died."""

    def check() -> str | None:
        if not srv.listener.alive():
            return f"listener died: {srv.listener.death()}"
        avail = mem_available_mib()
        if avail < min_mib:
            return f"MemAvailable {avail} MiB < {min_mib} MiB (--min-available-mib)"
        return None

    return check


def machine_info(py_version: str | None) -> dict[str, Any]:
    import compare

    info = compare.machine_info(py_version)
    info["mem_total_mib"] = mem_total_mib()
    return info


def mem_total_mib() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024
    return 0


def scenario_key(name: str, args: argparse.Namespace) -> str:
    size = {
        "idle": args.conns,
        "churn": args.churn,
        "setup": args.setup,
        "echo": args.echo_streams,
        "import": None,
    }[name]
    return name if size is None else f"{name}@{size}"


def run_scenario(
    name: str,
    args: argparse.Namespace,
    listeners: dict[str, Impl],
    impls: dict[str, Impl],
    log_dir: Path,
) -> dict[str, Any]:
    """One scenario against every listener in ``listeners``; ``impls`` has the clients."""
    started = dt.datetime.now(dt.UTC)
    record: dict[str, Any] = {
        "date": started.isoformat(timespec="seconds"),
        "load_start": round(os.getloadavg()[0], 2),
        "mem_available_mib_start": mem_available_mib(),
        "quick": args.quick,
        "results": {},
        "errors": {},
    }
    if name == "import":
        record["results"]["p2pkit"] = scenario_import(args)
        listeners = {}
    for impl_name, impl in listeners.items():
        if name == "echo" and impl_name not in ECHO_IMPLS:
            continue
        print(f"== {name}: {impl_name} listener", flush=True)
        try:
            if name == "idle":
                res = scenario_idle(args, impl, log_dir)
            elif name == "churn":
                res = scenario_churn(args, impl, log_dir)
            elif name == "setup":
                res = scenario_setup(args, impl, log_dir)
            else:
                clients = [impls["p2pkit"]]
                res = scenario_echo(args, impl, log_dir, clients)
            record["results"][impl_name] = res
            print("   " + json.dumps(res)[:600], flush=True)
            short = shortfall(name, res)
            if short:
                record["errors"][impl_name] = f"incomplete: {short}"
                print(f"   INCOMPLETE: {short}", flush=True)
        except (PeerError, OSError, KeyError, ValueError) as exc:
            record["errors"][impl_name] = " ".join(f"{type(exc).__name__}: {exc}".split())[:500]
            print(f"   FAILED: {exc}", flush=True)
    record["load_end"] = round(os.getloadavg()[0], 2)
    record["duration_s"] = round((dt.datetime.now(dt.UTC) - started).total_seconds(), 1)
    return record


def _exit_on_signal(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--quick",
        action="store_true",
        help="small sizes for a smoke run (< 1 min); figures not to quote",
    )
    ap.add_argument(
        "--scenario",
        action="append",
        choices=SCENARIOS,
        help="run only these (repeatable; default all)",
    )
    ap.add_argument(
        "--impl",
        action="append",
        choices=IMPLS,
        help="listeners to measure (repeatable; default all)",
    )
    ap.add_argument("--conns", type=int, default=1000, help="idle: connections held")
    ap.add_argument("--dialers", type=int, default=4, help="idle: dialer processes")
    ap.add_argument(
        "--concurrency", type=int, default=8, help="idle: dials in flight per dialer process"
    )
    ap.add_argument(
        "--idle-seconds",
        type=float,
        default=10.0,
        help="idle: listener CPU is measured over this long",
    )
    ap.add_argument("--churn", type=int, default=2000, help="churn: sequential connections")
    ap.add_argument("--setup", type=int, default=50, help="setup: fresh connections timed")
    ap.add_argument("--echo-streams", type=int, default=1000)
    ap.add_argument("--echo-runs", type=int, default=3)
    ap.add_argument("--import-runs", type=int, default=7)
    ap.add_argument(
        "--settle", type=float, default=2.0, help="seconds to wait before each RSS reading"
    )
    ap.add_argument("--churn-settle", type=float, default=0.5)
    ap.add_argument("--ramp-timeout", type=float, default=60.0)
    ap.add_argument(
        "--min-available-mib",
        type=int,
        default=4096,
        help="abort a ramp when the machine's MemAvailable drops below this",
    )
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument(
        "--fresh",
        action="store_true",
        help="do not keep earlier records (other scenarios, sizes or listeners) from the "
        "previous results file",
    )
    add_event_loop_arg(ap)
    args = ap.parse_args(argv)
    select(args.event_loop)
    if args.quick:
        args.conns, args.churn, args.setup = min(args.conns, 100), min(args.churn, 100), 10
        args.echo_runs, args.import_runs, args.idle_seconds, args.settle = 1, 3, 2.0, 1.0
        args.churn_settle = 0.2
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _exit_on_signal)
    nofile = raise_nofile()
    if args.conns + 100 > nofile[0]:
        print(f"error: RLIMIT_NOFILE {nofile} is too low for --conns {args.conns}", file=sys.stderr)
        return 2
    scenarios = args.scenario or list(SCENARIOS)
    wanted = args.impl or list(IMPLS)
    impls: dict[str, Impl] = {"p2pkit": p2pkit_impl()}
    notes: list[str] = []
    py_version = None
    if "js" in wanted:
        if not (JS_DIR / "node_modules").is_dir():
            print("installing the pinned js-libp2p peer (npm ci)...", flush=True)
            subprocess.run(
                ["npm", "ci", "--no-audit", "--no-fund"], cwd=JS_DIR, check=True, timeout=600
            )
        impls["js"] = js_impl()
    if "py-libp2p" in wanted:
        from _pylibp2p import ensure_pylibp2p

        py, py_version, note = ensure_pylibp2p()
        if py is not None:
            impls["py-libp2p"] = py
        if note:
            notes.append(note)
    log_dir = Path(tempfile.mkdtemp(prefix="p2pkit-scale-"))
    print(f"logs: {log_dir}; RLIMIT_NOFILE {nofile}; load {os.getloadavg()[0]:.2f}", flush=True)
    # p2pkit always dials (and is the echo client); only the wanted ones are listeners.
    listeners = {k: v for k, v in impls.items() if k in wanted}
    records: dict[str, Any] = {}
    for name in scenarios:
        key = scenario_key(name, args)
        records[key] = run_scenario(name, args, listeners, impls, log_dir)
        records[key]["notes"] = notes
    # A smoke run must not mix its small sizes into the figures that are quoted.
    stem = "scale-quick" if args.quick else "scale-latest"
    out_json = args.out / f"{stem}.json"
    previous: dict[str, Any] = {}
    if out_json.exists() and not args.fresh:
        with contextlib.suppress(ValueError, OSError):
            previous = json.loads(out_json.read_text()).get("scenarios", {})
    result = {
        "machine": machine_info(py_version),
        "scenarios": {**previous, **carry_over(previous, records)},
    }
    args.out.mkdir(parents=True, exist_ok=True)
    out_json.write_text(json.dumps(result, indent=1) + "\n")
    md = render_markdown(result)
    (args.out / f"{stem}.md").write_text(md)
    print()
    print(md)
    return 0 if all(not r["errors"] for r in records.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
