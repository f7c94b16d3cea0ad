"""What the throughput scripts (``noise_``, ``yamux_``, ``mplex_``, ``tls_throughput.py``) share.

Why one module: each script is a two-process benchmark of its own package, and they had
grown copies of the same size parser, push-mode byte counter, process harness, result
arithmetic and print-line pieces; with one copy their figures are computed and printed
alike.  Imported as a sibling (``from _throughput import ...``): running ``python
benchmarks/<script>.py`` puts this directory on ``sys.path``, and so do the child
processes (``spawn`` passes ``sys.path`` on; ``--serve`` re-runs the script).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any, TypeVar

from _loop import add_event_loop_arg, run, select

if TYPE_CHECKING:  # compare.py imports this module too and needs no p2pkit in its process
    from p2pkit.abc import RawConnection, Transport

KiB = 1024
MiB = 1024 * KiB
T = TypeVar("T")


def parse_size(text: str) -> int:
    """Bytes from a command-line size: ``64MiB``, ``1.5GB`` or a plain count."""
    units = {"KiB": KiB, "MiB": MiB, "GiB": 1024 * MiB, "KB": 10**3, "MB": 10**6, "GB": 10**9}
    for unit, mul in units.items():
        if text.endswith(unit):
            return int(float(text[: -len(unit)]) * mul)
    return int(text)


# -- push-mode receivers (``start_push``) ----------------------------------------------------


class PushDone:
    """Base of a push-mode receiver: ``done`` resolves at EOF or when the connection is lost,
    so a benchmark can await the end of the byte stream without a read loop."""

    def __init__(self) -> None:
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def eof_received(self) -> None:
        if not self.done.done():
            self.done.set_result(None)

    def connection_lost(self, exc: BaseException | None) -> None:
        self.eof_received()


class Counter(PushDone):
    """Push-mode receiver: counts bytes, notes the time of the first and last byte (the
    receiver's clock is the one that counts: it sees when the bytes have really arrived)."""

    def __init__(self) -> None:
        super().__init__()
        self.total = 0
        self.first = 0.0
        self.last = 0.0

    def data_received(self, data: memoryview) -> None:
        now = time.perf_counter()
        if not self.total:
            self.first = now
        self.last = now
        self.total += len(data)


# -- noise_ and yamux_throughput: a spawned child process, results over a pipe --------------


def spawn_pair(
    child_main: Callable[..., None],
    child_args: tuple[Any, ...],
    here: Callable[[str], Coroutine[Any, Any, T]],
) -> tuple[T, dict[str, Any]]:
    """Run ``child_main(pipe, *child_args)`` in a fresh process and ``here(addr)`` in this one.

    The child listens, sends its address and then its result dict over ``pipe``.  Why
    "spawn": a new interpreter per run, nothing inherited from earlier runs or this
    process's state.  Returns (``here``'s result, the child's dict).
    """
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=child_main, args=(child, *child_args), daemon=True)
    proc.start()
    child.close()  # only the child holds its end: if it dies, recv() raises EOFError
    try:
        addr = parent.recv()
        mine = run(here(addr))
        theirs: dict[str, Any] = parent.recv()
    finally:
        proc.join(60)
        if proc.is_alive():
            proc.kill()
    return mine, theirs


async def accept_one(transport: Transport, pipe: Connection) -> RawConnection:
    """The child's side of :func:`spawn_pair`: listen on a free loopback port, send the
    address over ``pipe`` and return the first connection (the listener is closed: a run
    is one connection)."""
    from multiaddr import Multiaddr  # here, not at the top: see the TYPE_CHECKING import

    accepted: asyncio.Future[RawConnection] = asyncio.get_running_loop().create_future()
    listener = await transport.listen(
        Multiaddr("/ip4/127.0.0.1/tcp/0"), lambda c: accepted.set_result(c)
    )
    pipe.send(str(listener.addrs[0]))
    conn = await accepted
    await listener.close()
    return conn


def add_rates(result: dict[str, Any]) -> dict[str, Any]:
    """Add ``MBps``, each side's CPU seconds per GB and ``cpu_bound_MBps`` to a run's
    ``bytes``, ``seconds``, ``send_cpu`` and ``recv_cpu``; returns ``result``.

    ``cpu_bound_MBps`` is what an otherwise idle 2-core machine would reach: each process
    on its own core, the busier one sets the pace (wall-clock rates mean little while
    other jobs share the cores).
    """
    result["MBps"] = result["bytes"] / result["seconds"] / 1e6
    gb = result["bytes"] / 1e9
    result["send_cpu_per_GB"] = result["send_cpu"] / gb
    result["recv_cpu_per_GB"] = result["recv_cpu"] / gb
    result["cpu_bound_MBps"] = result["bytes"] / max(result["send_cpu"], result["recv_cpu"]) / 1e6
    return result


def rate_text(r: dict[str, Any]) -> str:
    """The start of a run's line, alike in every script: ``67.1 MB in 0.059 s = 1145.8 MB/s``."""
    return f"{r['bytes'] / 1e6:8.1f} MB in {r['seconds']:6.3f} s = {r['MBps']:7.1f} MB/s"


def cpu_text(r: dict[str, Any]) -> str:
    """A run's CPU cost per side (see :func:`add_rates`): ``CPU s/GB send 0.91 recv 0.84``."""
    return f"CPU s/GB send {r['send_cpu_per_GB']:.2f} recv {r['recv_cpu_per_GB']:.2f}"


def median_text(rates: list[float]) -> str:
    """A scenario's summary: ``median:  1145.8 MB/s over 3 runs``."""
    return f"median: {statistics.median(rates):7.1f} MB/s over {len(rates)} runs"


# -- mplex_ and tls_throughput: the script re-run as the receiver, one JSON line -------------

#: The sender of one run: (listener address, bytes, chunk size) -> the receiver's answer
#: (seconds between its first and last byte, bytes it received).
Send = Callable[[str, int, int], Coroutine[Any, Any, tuple[float, int]]]


def serve_and_send_main(
    bench: str, script: str, serve: Callable[[int], Coroutine[Any, Any, None]], send: Send
) -> None:
    """The whole ``main`` of such a script: ``--mib``, ``--runs``, ``--chunk-kib``.

    The receiver is ``script --serve``: one child process that prints ``LISTEN <addr>``
    and serves every run; ``send`` runs here.  Prints the rates as one JSON line.
    """
    p = argparse.ArgumentParser()
    p.add_argument("--mib", type=int, default=512)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--chunk-kib", type=int, default=256)
    p.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    add_event_loop_arg(p)
    args = p.parse_args()
    select(args.event_loop)
    if args.serve:
        run(serve(args.runs))
        return
    child = subprocess.Popen(
        [sys.executable, script, "--serve", "--runs", str(args.runs)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        addr = child.stdout.readline().split()[1]
        total = args.mib << 20
        rates = []
        for _ in range(args.runs):
            elapsed, got = run(send(addr, total, args.chunk_kib << 10))
            assert got >= total, (got, total)
            rates.append(got / elapsed / 1e6)
        child.wait(30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        if child.stdout is not None:
            child.stdout.close()
    result = {
        "bench": bench,
        "python": sys.version.split()[0],
        "mib": args.mib,
        "event_loop": args.event_loop,
        "chunk_kib": args.chunk_kib,
        "runs_MBps": [round(r, 1) for r in rates],
        "median_MBps": round(statistics.median(rates), 1),
    }
    print(json.dumps(result))
