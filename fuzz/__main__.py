"""``python -m fuzz``: run every target (or some) in batches over worker processes.

``--smoke`` (CI): 20,000 inputs per target (fewer for a target that says so:
``Target.smoke``).  ``--long``: 1,000,000 per target.
``--count N``: N per target.  Exit status 1 when any untyped exception was found (known
ones, fuzz/known.py, are printed but do not fail the run).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import multiprocessing
import os
import signal
import sys
import time
import warnings
from dataclasses import asdict

from .engine import Stats, fuzz
from .known import KNOWN
from .targets import TARGETS

SMOKE = 20_000
LONG = 1_000_000

_SEEDS: dict[str, list[bytes]] = {}


def _quiet() -> None:
    """Hostile input makes the code under test log and warn by design: not our output."""
    logging.disable(logging.CRITICAL)
    warnings.simplefilter("ignore")


def _init(seeds: dict[str, list[bytes]]) -> None:
    # A worker dies of SIGTERM (the pool's terminate at the end of every run).  It was
    # forked with the parent's handler, which raises SystemExit: in a worker idle in the
    # task queue's get() that ran exit code with the queue's lock held, and could hang
    # on it for good (seen once in CI: the run never ended).
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _quiet()
    _SEEDS.update(seeds)


def _batch(job: tuple[str, int, int]) -> Stats:
    name, seed, count = job
    return fuzz(TARGETS[name], _SEEDS[name], seed, count)


def self_check() -> None:
    """The engine must report what it exists to report: a canary target that raises an
    untyped exception on some inputs gives a finding, typed errors are only counted."""
    import random

    from p2pkit.errors import ProtocolError

    from .targets import Target

    def canary(data: bytes, rng: random.Random) -> None:
        if data[:1] == b"\x00":
            raise ProtocolError("typed")
        if data[:1] == b"\x01":
            raise KeyError("untyped")

    stats = fuzz(Target("canary", canary, lambda: []), [], seed=1, count=2000)
    assert stats.inputs == 2000 and stats.typed > 0, stats
    assert [f.exception for f in stats.findings.values()] == ["builtins.KeyError"], stats


def batch_seed(base: int, name: str, index: int) -> int:
    return int.from_bytes(hashlib.sha256(f"{base}:{name}:{index}".encode()).digest()[:8], "big")


def report(names: list[str], totals: dict[str, Stats]) -> int:
    """Print the per-target table, every finding and the known ones; the finding count."""
    findings = 0
    print(f"{'target':28} {'inputs':>10} {'typed err':>10} {'known':>7} {'untyped':>8} {'in/s':>7}")
    for n in names:
        s = totals[n]
        untyped = sum(f.count for f in s.findings.values())
        findings += len(s.findings)
        rate = s.inputs / s.seconds if s.seconds else 0.0
        known = sum(s.known.values())
        print(f"{n:28} {s.inputs:10} {s.typed:10} {known:7} {untyped:8} {rate:7.0f}")
    for n in names:
        for key, f in totals[n].findings.items():
            print(f"\nFINDING [{n}] {key}: {f.count} inputs; first (batch seed {f.seed}):")
            print(f"  python -m fuzz --repro {n} {f.input_hex}")
            print("  " + f.traceback.replace("\n", "\n  "))
    for names_, exc, why in KNOWN:
        hits = sum(totals[n].known[exc] for n in names if n in names_)
        print(f"known: {exc}: {hits} inputs ({why})")
        for n in names:
            if n in names_ and exc in totals[n].known_example:
                print(f"  e.g. python -m fuzz --repro {n} {totals[n].known_example[exc]}")
    return findings


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m fuzz", description=__doc__)
    size = p.add_mutually_exclusive_group()
    size.add_argument("--smoke", action="store_true", help=f"{SMOKE} inputs per target (CI)")
    size.add_argument("--long", action="store_true", help=f"{LONG} inputs per target")
    size.add_argument("--count", type=int, help="inputs per target")
    p.add_argument("--targets", help="comma-separated target names (default: all)")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="worker processes")
    p.add_argument("--batch", type=int, default=0, help="inputs per batch (default: auto)")
    p.add_argument("--seed", type=int, default=0, help="base seed (batches derive theirs)")
    p.add_argument("--json", help="write the per-target results to this file")
    p.add_argument("--progress", action="store_true", help="a line per finished batch")
    p.add_argument("--list", action="store_true", help="list the targets and exit")
    p.add_argument("--repro", nargs=2, metavar=("TARGET", "HEX"), help="run one input")
    args = p.parse_args(argv)

    if args.list:
        print("\n".join(TARGETS))
        return 0
    if args.repro:
        name, hexdata = args.repro
        import random

        TARGETS[name].run(bytes.fromhex(hexdata), random.Random(args.seed))
        print("no exception")
        return 0
    count = args.count or (LONG if args.long else SMOKE)
    if count <= 0 or args.jobs <= 0:
        p.error("--count and --jobs must be positive")
    names = args.targets.split(",") if args.targets else list(TARGETS)
    unknown = [n for n in names if n not in TARGETS]
    if unknown:
        p.error(f"unknown targets {unknown}; --list shows them")

    _quiet()
    self_check()
    # SIGTERM ends the run like Ctrl-C: the pool's `with` then terminates the workers
    # (killed by default, the parent would leave them running to the end of their batch).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    start = time.perf_counter()
    seeds = {n: TARGETS[n].seeds() for n in names}
    batch = args.batch or max(1000, min(50_000, count // 4))
    jobs = []
    for n in names:
        n_count = (TARGETS[n].smoke or count) if args.smoke else count
        for i, off in enumerate(range(0, n_count, batch)):
            jobs.append((n, batch_seed(args.seed, n, i), min(batch, n_count - off)))
    totals = {n: Stats(n) for n in names}
    with multiprocessing.get_context("fork").Pool(args.jobs, _init, (seeds,)) as pool:
        for done, stats in enumerate(pool.imap_unordered(_batch, jobs), 1):
            totals[stats.target].add(stats)
            if args.progress:
                t = totals[stats.target]
                print(
                    f"[{done}/{len(jobs)} batches, {time.perf_counter() - start:.0f} s] "
                    f"{t.target}: {t.inputs} inputs, {len(t.findings)} untyped site(s)",
                    file=sys.stderr,
                    flush=True,
                )
    wall = time.perf_counter() - start
    findings = report(names, totals)
    total = sum(s.inputs for s in totals.values())
    print(
        f"{total} inputs over {len(names)} targets in {wall:.1f} s with {args.jobs} processes; "
        f"{findings} untyped exception site(s)"
    )
    if args.json:
        out = {n: {**asdict(s), "known": dict(s.known)} for n, s in totals.items()}
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=1)
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
