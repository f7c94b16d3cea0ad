"""Idle CPU of a listener holding many connections, with keepalive compressed in time.

Why: at 10,000 idle connections and yamux's 30 s keepalive a listener answers and sends
hundreds of pings a second; what that costs is what ``scale.py --scenario idle`` reports
as idle CPU, but a 10,000-connection run takes minutes.  Here the listener's keepalive
interval is shortened so that N connections produce the same ping rate
(10,000 / 30 s = N / interval), and the listener's CPU is read from /proc while the
connections are idle.  ``--source DIR`` runs the listener from another source tree
(e.g. ``git archive`` of an older commit), so that two versions are compared side by side,
alternating, in one run:

    python benchmarks/scale_keepalive.py --conns 1000 --interval 3 --rounds 3 \\
        --source /tmp/base=/tmp/base-tree
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _scale_proc import cpu_seconds, raise_nofile

HERE = Path(__file__).resolve().parent
PACKAGES = ("core", "transport-tcp", "security-noise", "security-tls", "muxer-yamux", "muxer-mplex")


def _env(source: Path | None) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    if source is not None:  # its packages before the installed (editable) ones
        env["PYTHONPATH"] = os.pathsep.join(str(source / "packages" / p / "src") for p in PACKAGES)
    return env


def one_run(args: argparse.Namespace, source: Path | None) -> float:
    """Listener CPU, % of one core, while ``args.conns`` connections are idle."""
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "listener.toml"
        cfg.write_text(
            "[p2pkit]\nsecurity = ['noise']\nmuxers = ['yamux']\n"
            f"[p2pkit.plugins.yamux]\nkeepalive_interval = {args.interval}\n"
        )
        argv = [sys.executable, "-m", "p2pkit", "listen", "--config", str(cfg)]
        argv += ["--listen", "/ip4/127.0.0.1/tcp/0"]
        listener = subprocess.Popen(
            argv, env=_env(source), stdout=subprocess.PIPE, text=True, start_new_session=True
        )
        dialer = None
        try:
            assert listener.stdout is not None
            line = listener.stdout.readline()
            if not line.startswith("LISTEN "):
                raise SystemExit(f"listener did not start: {line!r}")
            addr = line.split()[1]
            dialer = subprocess.Popen(
                [sys.executable, str(HERE / "_scale_dialer.py"), "hold", addr,
                 "--conns", str(args.conns), "--concurrency", "16"],
                env=_env(None), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                start_new_session=True,
            )  # fmt: skip
            assert dialer.stdout is not None and dialer.stdin is not None
            for _ in range(args.conns + 10):
                line = dialer.stdout.readline()
                if not line or line.startswith("READY"):
                    break
            ready = json.loads(line.split(" ", 1)[1])
            if ready["connected"] != args.conns:
                raise SystemExit(f"only {ready['connected']} of {args.conns} connected")
            time.sleep(args.settle)
            c0, t0 = cpu_seconds(listener.pid), time.monotonic()
            time.sleep(args.seconds)
            c1, t1 = cpu_seconds(listener.pid), time.monotonic()
            if listener.poll() is not None:
                raise SystemExit("listener died")
            dialer.stdin.write("close\n")
            dialer.stdin.flush()
            return 100.0 * (c1 - c0) / (t1 - t0)
        finally:
            for proc in (dialer, listener):
                if proc is not None and proc.poll() is None:
                    proc.kill()
                    proc.wait(10)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--conns", type=int, default=1000)
    ap.add_argument("--interval", type=float, default=3.0, help="listener keepalive, s")
    ap.add_argument("--seconds", type=float, default=15.0, help="CPU measured over this")
    ap.add_argument("--settle", type=float, default=3.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument(
        "--source", action="append", default=[], help="NAME=DIR: another source tree to compare"
    )
    args = ap.parse_args()
    raise_nofile()
    variants: list[tuple[str, Path | None]] = [("this tree", None)]
    for item in args.source:
        name, _, path = item.partition("=")
        variants.append((name, Path(path)))
    results: dict[str, list[float]] = {name: [] for name, _ in variants}
    for _ in range(args.rounds):  # alternating, so load changes hit every variant alike
        for name, source in variants:
            results[name].append(round(one_run(args, source), 2))
    rate = args.conns / args.interval
    print(f"{args.conns} idle connections, listener keepalive {args.interval} s "
          f"({rate:.0f} pings/s, as {rate * 30:.0f} connections at 30 s); load "
          f"{os.getloadavg()[0]:.1f}")  # fmt: skip
    for name, runs in results.items():
        print(f"  {name}: listener CPU median {statistics.median(runs):.2f} % of a core {runs}")


if __name__ == "__main__":
    main()
