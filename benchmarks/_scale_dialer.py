"""The dialer side of ``scale.py``: many p2pkit hosts, one identity per connection.

Run by ``scale.py`` (never by hand, though it can be) with the repository venv's python:

    python _scale_dialer.py hold  <maddr> --conns N [--concurrency C]
    python _scale_dialer.py churn <maddr> --count M --checkpoints 200,400,...
    python _scale_dialer.py setup <maddr> --count K

Why one host per connection: the listener must see N *distinct* peers (its per-peer
state is part of what is measured), and a libp2p host holds at most one connection per
peer it dials.  A host costs well under a millisecond to build, so a dialer process
can hold thousands of them.  Every listener (p2pkit, js-libp2p, py-libp2p) is dialled by
this same code, so differences in the figures are the listener's.

Protocol with ``scale.py`` (line-based, stdout/stdin):

* ``hold``: prints ``PROGRESS <n>`` now and then, then ``READY {json}`` once every
  connection is up (or failed after retries); then obeys stdin lines ``ping`` (one
  ping on a new stream on every connection -> ``PINGED {json}``) and ``close`` (stop
  every host -> ``CLOSED {json}``, then exit).  EOF on stdin closes and exits too.
* ``churn``: sequential fresh host -> connect -> ping -> wait for identify -> stop; at
  each checkpoint prints ``AT <i>`` and waits for one stdin line before going on;
  finally prints ``DONE {json}``.
* ``setup``: K times a fresh host times connect + first ping; prints ``DONE {json}``.

The dialer's own memory is not measured; it uses a small TCP receive buffer when the
installed p2pkit offers that option, so thousands of dialer-side connections do not
crowd the machine (the listener keeps its defaults).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from _loop import run
from _scale_proc import raise_nofile

from p2pkit.config import HostConfig, load_config
from p2pkit.errors import ConfigError
from p2pkit.events import PeerIdentified
from p2pkit.host import Host
from p2pkit.protocols.ping import PROTOCOL_ID as PING
from p2pkit.protocols.ping import ping

#: Tried in order; the first that the installed p2pkit accepts is used (options come and
#: go while the code changes, the benchmark must keep working).
CONFIGS: list[dict[str, Any]] = [
    {
        "security": ["noise"],
        "muxers": ["yamux"],
        "plugins": {"tcp": {"read_buffer_size": 16384}},
        "connection_manager": {"check_interval": 3600.0},
    },
    {"security": ["noise"], "muxers": ["yamux"]},
]
RETRIES = 3


def dialer_config() -> HostConfig:
    last: Exception | None = None
    for table in CONFIGS:
        try:
            return load_config(table)
        except ConfigError as exc:
            last = exc
    raise SystemExit(f"error: no dialer configuration accepted: {last}")


def emit(tag: str, obj: Any = None) -> None:
    print(tag if obj is None else f"{tag} {json.dumps(obj)}", flush=True)


async def read_line() -> str:
    """One line from stdin without blocking the event loop ('' at EOF)."""
    return await asyncio.to_thread(sys.stdin.readline)


async def ping_once(conn: Any, timeout: float) -> float:
    """One 32-byte ping on a new stream (lazy negotiation: ping writes first)."""
    async with asyncio.timeout(timeout):
        stream = await conn.new_stream([PING], lazy=True)
    rtts = await ping(stream, 1, timeout=timeout)
    return rtts[0]


# -- hold ------------------------------------------------------------------------------------


class Holder:
    """N connections, each from its own host, held open until told to close."""

    def __init__(self, addr: str, config: HostConfig, timeout: float) -> None:
        self.addr = addr
        self.config = config
        self.timeout = timeout
        self.held: list[tuple[Host, Any]] = []
        self.errors: dict[str, int] = {}

    def _error(self, exc: BaseException) -> None:
        key = f"{type(exc).__name__}: {exc}"[:160]
        self.errors[key] = self.errors.get(key, 0) + 1

    async def _one(self) -> bool:
        for _ in range(RETRIES):
            host = Host(self.config)
            try:
                await host.start()
                async with asyncio.timeout(self.timeout):
                    conn = await host.connect(self.addr)
            except Exception as exc:  # counted, retried with a fresh identity
                self._error(exc)
                with contextlib.suppress(Exception):
                    await host.stop()
                await asyncio.sleep(0.05)
                continue
            self.held.append((host, conn))
            return True
        return False

    async def connect_all(self, n: int, concurrency: int) -> dict[str, Any]:
        start = time.monotonic()
        sem = asyncio.Semaphore(concurrency)
        done = 0
        failed = 0

        async def guarded() -> None:
            nonlocal done, failed
            async with sem:
                ok = await self._one()
            done += 1
            failed += not ok
            if done % 250 == 0:
                emit(f"PROGRESS {done}")

        await asyncio.gather(*(guarded() for _ in range(n)))
        return {
            "connected": len(self.held),
            "failed": failed,
            "seconds": round(time.monotonic() - start, 3),
            "errors": self.errors,
        }

    async def ping_all(self, concurrency: int) -> dict[str, Any]:
        start = time.monotonic()
        sem = asyncio.Semaphore(concurrency)
        rtts: list[float] = []
        errors: dict[str, int] = {}

        async def one(host: Host, conn: Any) -> None:
            async with sem:
                try:
                    rtts.append(await ping_once(conn, self.timeout))
                except Exception as exc:
                    key = f"{type(exc).__name__}: {exc}"[:160]
                    errors[key] = errors.get(key, 0) + 1

        await asyncio.gather(*(one(h, c) for h, c in self.held))
        return {
            "ok": len(rtts),
            "failed": len(self.held) - len(rtts),
            "median_rtt_ms": round(statistics.median(rtts) * 1000, 3) if rtts else None,
            "seconds": round(time.monotonic() - start, 3),
            "errors": errors,
        }

    async def close_all(self, concurrency: int) -> dict[str, Any]:
        start = time.monotonic()
        sem = asyncio.Semaphore(concurrency)

        async def stop(host: Host) -> None:
            async with sem:
                with contextlib.suppress(Exception):
                    await host.stop()

        await asyncio.gather(*(stop(h) for h, _ in self.held))
        n = len(self.held)
        self.held.clear()
        return {"closed": n, "seconds": round(time.monotonic() - start, 3)}


async def cmd_hold(args: argparse.Namespace) -> None:
    holder = Holder(args.addr, dialer_config(), args.timeout)
    emit("READY", await holder.connect_all(args.conns, args.concurrency))
    try:
        while True:
            line = (await read_line()).strip()
            if line == "ping":
                emit("PINGED", await holder.ping_all(args.concurrency * 4))
            elif line in ("close", ""):
                break
    finally:
        emit("CLOSED", await holder.close_all(args.concurrency * 4))


# -- churn -----------------------------------------------------------------------------------


async def one_visit(config: HostConfig, addr: str, timeout: float) -> dict[str, float]:
    """Fresh identity: connect, ping, let identify finish, disconnect."""
    host = Host(config)
    await host.start()
    try:
        with host.events.subscribe(PeerIdentified, maxsize=4) as sub:
            t0 = time.perf_counter()
            async with asyncio.timeout(timeout):
                conn = await host.connect(addr)
            t1 = time.perf_counter()
            rtt = await ping_once(conn, timeout)
            t2 = time.perf_counter()
            identified = True
            try:
                await sub.get(timeout=min(timeout, 5.0))
            except TimeoutError:
                identified = False
    finally:
        await host.stop()
    return {
        "connect_ms": (t1 - t0) * 1000,
        "rtt_ms": rtt * 1000,
        "total_ms": (t2 - t0) * 1000,
        "identified": float(identified),
    }


async def visits(
    args: argparse.Namespace, pause_at: set[int], on_pause: Callable[[int], Any] | None
) -> dict[str, Any]:
    config = dialer_config()
    results: list[dict[str, float]] = []
    errors: dict[str, int] = {}
    start = time.monotonic()
    for i in range(1, args.count + 1):
        try:
            results.append(await one_visit(config, args.addr, args.timeout))
        except Exception as exc:  # one failed visit is reported, not fatal
            key = f"{type(exc).__name__}: {exc}"[:160]
            errors[key] = errors.get(key, 0) + 1
        if i in pause_at and on_pause is not None:
            await on_pause(i)

    def med(key: str) -> float | None:
        vals = [r[key] for r in results]
        return round(statistics.median(vals), 3) if vals else None

    return {
        "count": args.count,
        "ok": len(results),
        "failed": args.count - len(results),
        "identified": int(sum(r["identified"] for r in results)),
        "median_connect_ms": med("connect_ms"),
        "median_rtt_ms": med("rtt_ms"),
        "median_total_ms": med("total_ms"),
        "total_ms": [round(r["total_ms"], 3) for r in results],
        "seconds": round(time.monotonic() - start, 3),
        "errors": errors,
    }


async def cmd_churn(args: argparse.Namespace) -> None:
    checkpoints = {int(x) for x in args.checkpoints.split(",") if x.strip()}

    async def pause(i: int) -> None:
        emit(f"AT {i}")
        await read_line()

    emit("DONE", await visits(args, checkpoints, pause))


async def cmd_setup(args: argparse.Namespace) -> None:
    emit("DONE", await visits(args, set(), None))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("op", choices=["hold", "churn", "setup"])
    ap.add_argument("addr")
    ap.add_argument("--conns", type=int, default=250)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--count", type=int, default=100)
    ap.add_argument("--checkpoints", default="")
    ap.add_argument("--timeout", type=float, default=30.0, help="per connect / ping, seconds")
    args = ap.parse_args()
    raise_nofile()
    op = {"hold": cmd_hold, "churn": cmd_churn, "setup": cmd_setup}[args.op]
    run(op(args))  # the loop scale.py was asked for (inherited, _loop.py)


if __name__ == "__main__":
    main()
