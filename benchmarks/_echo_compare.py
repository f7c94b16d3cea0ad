"""Many concurrent small echo streams on one connection, every implementation against
itself, side by side in one run (what ``compare.py`` does for perf and ping).

    python benchmarks/_echo_compare.py                       # QUIC, 1000 x 1 KiB, 3 runs
    python benchmarks/_echo_compare.py --stack tcp+noise+yamux --streams 100 --runs 5

Why a separate script: the figure is the time for all streams of one client (opened at
once, each writes ``--bytes``, half-closes and reads the echo back, compared), a
different shape from compare.py's per-direction throughput cells.  Each peer reports
``seconds`` itself, connection set-up excluded; runs alternate between the
implementations so that they share the machine's load.  py-libp2p offers 128
concurrent QUIC streams, so its 1000 streams also wait for stream credit.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _peers import STACKS, Impl, child_env, js_impl, p2pkit_impl
from _procs import Listener, PeerError, run_json
from _pylibp2p import ensure_pylibp2p


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--stack", default="quic", choices=[s.name for s in STACKS])
    ap.add_argument("--streams", type=int, default=1000)
    ap.add_argument("--bytes", type=int, default=1024)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--timeout", type=float, default=120.0)
    ap.add_argument("--no-py", action="store_true")
    args = ap.parse_args(argv)
    stack = next(s for s in STACKS if s.name == args.stack)
    impls: list[Impl] = [p2pkit_impl(), js_impl()]
    if not args.no_py:
        py, _version, note = ensure_pylibp2p()
        if py is None:
            print(f"note: {note}")
        else:
            impls.append(py)
    seconds: dict[str, list[float]] = {i.name: [] for i in impls}
    failures = 0
    with tempfile.TemporaryDirectory() as logs, contextlib.ExitStack() as ctx:
        listeners = {
            i.name: ctx.enter_context(
                Listener(
                    f"{stack.name}.{i.name}", i.listen_argv(stack), i.cwd, child_env(), Path(logs)
                )
            )
            for i in impls
        }
        for run in range(args.runs):
            for impl in impls:
                cmd = impl.echo_argv(
                    stack, listeners[impl.name].addr, args.streams, args.bytes, args.timeout
                )
                try:
                    obj = run_json(
                        f"{impl.name} echo",
                        cmd,
                        cwd=impl.cwd,
                        env=child_env(),
                        timeout=args.timeout + 15,
                    )
                except PeerError as exc:
                    failures += 1
                    print(f"  run {run + 1} {impl.name}: FAILED {exc}", flush=True)
                    continue
                seconds[impl.name].append(float(obj["seconds"]))
                print(f"  run {run + 1} {impl.name}: {float(obj['seconds']):.3f} s", flush=True)
    print(f"{stack.name}: {args.streams} concurrent echo streams x {args.bytes} bytes, medians:")
    for name, values in seconds.items():
        if values:
            med = statistics.median(values)
            print(f"  {name:10} {med:8.3f} s  ({len(values)} runs)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
