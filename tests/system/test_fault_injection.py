"""Fault injection: echo transfers over real loopback TCP, killed at random points.

Every stack ({noise, tls, plaintext} x {yamux, mplex}) carries transfers of random
payloads (1 KiB - 2 MiB, log-uniform) through a one-connection proxy
(tests/system/fault_proxy.py).  Each transfer gets one fault, at a random byte of its
progress: a TCP RST (from the proxy, or SO_LINGER 0 on either host's socket), an abort
of the muxed connection on either side, the proxy closing both sockets mid-frame, a
stream reset on either side, or nothing (the control group).

Why: a transfer that dies must die loudly.  The client either gets its payload back
with the right SHA-256 or a typed ``P2PError``; never a hang, never an untyped
exception, never a short or wrong payload without an error.  After each batch every
host is stopped and the process must hold no more tasks, file descriptors or sockets
than before it.

The plan (stack, size, fault, point) comes from a seeded RNG; the seed is printed,
and ``P2PKIT_FAULT_SEED=<seed>`` replays the same plan.
"""

from __future__ import annotations

import asyncio
import collections
import gc
import hashlib
import os
import random
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from p2pkit.abc import MuxedStream
from p2pkit.builder import HostBuilder
from p2pkit.connection import Connection
from p2pkit.errors import P2PError
from p2pkit.host import Host
from p2pkit.protocols.echo import PROTOCOL_ID as ECHO

from .fault_proxy import Cut, FaultProxy

SECURITIES = ["noise", "tls", "plaintext"]
MUXERS = ["yamux", "mplex"]
STACKS = [(s, m) for s in SECURITIES for m in MUXERS]
KINDS = ["none", "proxy_rst", "proxy_close", "host_rst", "abort", "stream_reset"]
PARTS = 5  # test functions (each well inside pytest's per-test timeout)
BATCHES_PER_PART = 2
BATCH = 100  # transfers per batch: 5 x 2 x 100 = 1,000 transfers
CONCURRENCY = 16
MIN_SIZE, MAX_SIZE = 1 << 10, 2 << 20
CHUNK = 64 * 1024
TRANSFER_TIMEOUT = 30.0  # a transfer still running after this is a hang (a failure)
CLEANUP_TIMEOUT = 15.0
FD_SLACK = 3  # lazily opened, process-wide descriptors (e.g. a random device)


def _seed() -> int:
    env = os.environ.get("P2PKIT_FAULT_SEED")
    return int(env) if env else random.SystemRandom().randrange(1 << 32)


SEED = _seed()
#: proxy port -> the transfer it carried, to name the transfer behind a leaked socket
PROXY_PLANS: dict[int, Plan] = {}


@dataclass(frozen=True)
class Plan:
    """One transfer: its stack, payload size, fault and the point it fires at."""

    index: int
    stack: tuple[str, str]
    size: int
    kind: str
    side: str  # "client" / "server" for host faults
    trigger: int  # progress (bytes written + read by the client) at which it fires
    cut: Cut | None

    def __str__(self) -> str:
        sec, mux = self.stack
        where = self.cut if self.cut is not None else f"{self.side} at byte {self.trigger}"
        return f"#{self.index} {sec}+{mux} {self.size} B, {self.kind} ({where})"


def make_plans(rng: random.Random, first: int, n: int) -> list[Plan]:
    plans = []
    for i in range(first, first + n):
        stack = STACKS[i % len(STACKS)]
        size = int(MIN_SIZE * (MAX_SIZE / MIN_SIZE) ** rng.random())
        kind = rng.choice(KINDS)
        side = rng.choice(["client", "server"])
        trigger = rng.randrange(2 * size)
        cut = None
        if kind in ("proxy_rst", "proxy_close"):
            # Mostly mid-transfer; the first few KiB include the handshakes.
            direction = rng.choice(["c2s", "s2c"])
            how = "rst" if kind == "proxy_rst" else "close"
            cut = Cut(direction, rng.randrange(size + 8192), how)  # type: ignore[arg-type]
        plans.append(Plan(i, stack, size, kind, side, trigger, cut))
    return plans


@dataclass
class Outcome:
    """``ok`` (hash verified), ``typed`` (a P2PError, named in ``detail``) or a failure:
    ``hang``, ``untyped``, ``short`` / ``corrupt`` (wrong data without an error),
    ``control`` (the no-fault transfer failed), ``leak`` (a connection stayed up)."""

    kind: str
    detail: str = ""

    @property
    def failed(self) -> bool:
        return self.kind not in ("ok", "typed")


@dataclass
class Pair:
    server: Host
    client: Host

    @property
    def server_port(self) -> int:
        return int(self.server.listen_addrs[0].value_for_protocol("tcp"))


async def _host(security: str, muxer: str, listen: bool) -> Host:
    b = HostBuilder().security(security).muxer(muxer).transport("tcp")
    if listen:
        b.listen("/ip4/127.0.0.1/tcp/0")
    b.option(enable_echo=True)
    return await b.build().start()


def _server_conn(pair: Pair, proxy: FaultProxy) -> Connection | None:
    for conn in pair.server.connections():
        addr = conn.remote_addr
        if addr is not None and int(addr.value_for_protocol("tcp")) == proxy.upstream_port:
            return conn
    return None


async def _wait_for(cond: Callable[[], object], timeout: float) -> bool:
    """Poll ``cond`` until true or ``timeout`` s pass (a condition, not a fixed sleep)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not cond():
        if loop.time() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


class Injector:
    """Fires one host-side fault when the client's progress reaches the plan's trigger.

    Its targets (the connection and stream of the planned side) are found when the
    transfer starts, while the server's echo stream surely exists; by the trigger it
    may be finished already (then the fault hits a closed stream: the transfer is ok).
    """

    def __init__(self, plan: Plan, pair: Pair, proxy: FaultProxy) -> None:
        self.plan, self.pair, self.proxy = plan, pair, proxy
        self.conn: Connection | None = None  # the client's, set by run_transfer
        self.stream: MuxedStream | None = None
        self.fired = plan.kind not in ("host_rst", "abort", "stream_reset")
        self._target: tuple[Connection, MuxedStream | None] | None = None

    async def start(self) -> None:
        """Find the targets (bounded: a missing one leaves the fault unfired)."""
        if self.fired:
            return
        if self.plan.side == "client":
            assert self.conn is not None
            self._target = (self.conn, self.stream)
            return
        found: list[Connection] = []

        def server_ready() -> bool:
            conn = found[0] if found else _server_conn(self.pair, self.proxy)
            if conn is not None and not found:
                found.append(conn)
            return conn is not None and (_echo_stream(conn) is not None or conn.is_closed)

        await _wait_for(server_ready, 5.0)
        if found:
            self._target = (found[0], _echo_stream(found[0]))

    async def __call__(self, progress: int) -> None:
        if self.fired or progress < self.plan.trigger:
            return
        self.fired = True
        if self._target is None:
            return
        conn, stream = self._target
        if self.plan.kind == "host_rst":
            raw = getattr(conn.upgraded, "raw", None)
            assert raw is not None, "a TCP connection keeps its raw connection"
            raw.reset()  # SO_LINGER 0 + close: the peer gets a TCP RST
        elif self.plan.kind == "abort":
            conn.muxed.abort()
        elif stream is not None:
            stream.reset()


def _echo_stream(conn: Connection) -> MuxedStream | None:
    return next((s for s in conn.streams if s.protocol == ECHO), None)


async def _echo(stream: MuxedStream, payload: bytes, fire: Injector) -> tuple[int, bytes]:
    """Write ``payload`` while reading the echo; returns (bytes read, their SHA-256).
    Any error of the writer or the reader is raised (the reader's first)."""
    progress = 0

    async def writer() -> None:
        nonlocal progress
        for off in range(0, len(payload), CHUNK):
            chunk = payload[off : off + CHUNK]
            await stream.write(chunk)
            progress += len(chunk)
            await fire(progress)
        await stream.close_write()

    await fire.start()
    await fire(0)
    wtask = asyncio.create_task(writer())
    digest = hashlib.sha256()
    got = 0
    try:
        while chunk := await stream.read(CHUNK):
            digest.update(chunk)
            got += len(chunk)
            progress += len(chunk)
            await fire(progress)
    except BaseException:
        wtask.cancel()
        await asyncio.gather(wtask, return_exceptions=True)
        raise
    if got < len(payload) and not wtask.done():
        wtask.cancel()
    await asyncio.gather(wtask, return_exceptions=True)
    if not wtask.cancelled() and wtask.exception() is not None:
        raise wtask.exception()  # type: ignore[misc]
    return got, digest.digest()


async def run_transfer(plan: Plan, pair: Pair) -> Outcome:
    payload = random.Random(SEED * 1_000_003 + plan.index).randbytes(plan.size)
    proxy = await FaultProxy(pair.server_port, plan.cut).start()
    PROXY_PLANS[proxy.port] = plan
    inject = Injector(plan, pair, proxy)
    outcome: Outcome
    try:
        try:
            async with asyncio.timeout(TRANSFER_TIMEOUT):
                conn = inject.conn = await pair.client.connect(proxy.addr)
                stream = inject.stream = await conn.new_stream(ECHO)
                got, digest = await _echo(stream, payload, inject)
        except TimeoutError as exc:
            if isinstance(exc, P2PError):
                outcome = Outcome("typed", type(exc).__name__)
            else:
                outcome = Outcome("hang", f"still running after {TRANSFER_TIMEOUT} s")
        except P2PError as exc:
            outcome = Outcome("typed", type(exc).__name__)
        except Exception as exc:
            outcome = Outcome("untyped", f"{type(exc).__module__}.{type(exc).__name__}: {exc}")
        else:
            if got != plan.size:
                outcome = Outcome("short", f"{got} of {plan.size} bytes, no error")
            elif digest != hashlib.sha256(payload).digest():
                outcome = Outcome("corrupt", "SHA-256 mismatch, no error")
            else:
                outcome = Outcome("ok")
        if plan.kind == "none" and outcome.kind != "ok":
            outcome = Outcome("control", f"{outcome.kind}: {outcome.detail}")
    finally:
        left = await _cleanup(inject, proxy, pair)
    if left and not outcome.failed:
        outcome = Outcome("leak", left)
    return outcome


async def _cleanup(inject: Injector, proxy: FaultProxy, pair: Pair) -> str:
    """Close the transfer's connection and proxy; the server must then drop its side.
    Returns what was left behind ("" if nothing)."""
    try:
        async with asyncio.timeout(CLEANUP_TIMEOUT):
            if inject.stream is not None:
                inject.stream.reset()
            if inject.conn is not None:
                try:
                    await inject.conn.close()
                except P2PError:
                    pass
            await proxy.close()
    except TimeoutError:
        return "closing the client connection or the proxy hung"
    if not await _wait_for(lambda: _server_conn(pair, proxy) is None, CLEANUP_TIMEOUT):
        return f"the server still holds {_server_conn(pair, proxy)} after the peer left"
    if inject.conn is not None and inject.conn in pair.client.connections():
        return f"the client still tracks {inject.conn}"
    return ""


def _fds() -> tuple[int, int]:
    """(open descriptors, sockets among them) of this process."""
    fds = sockets = 0
    for name in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            continue  # the directory's own descriptor, closed meanwhile
        fds += 1
        sockets += target.startswith("socket:")
    return fds, sockets


def _open_transports() -> list[str]:
    """The asyncio transports still open, with their protocols (to name a leak)."""
    return [
        f"{t!r} {getattr(t.get_protocol(), 'conn', t.get_protocol())!r} "
        f"(transfer {PROXY_PLANS.get((t.get_extra_info('peername') or (0, 0))[1])})"
        for t in gc.get_objects()
        if isinstance(t, asyncio.Transport) and not t.is_closing()
    ][:10]


def _tasks(own: set[asyncio.Task[object]]) -> set[asyncio.Task[object]]:
    return {t for t in asyncio.all_tasks() if not t.done()} - own


async def run_batch(plans: list[Plan]) -> list[tuple[Plan, Outcome]]:
    pairs = {}
    try:
        for sec, mux in STACKS:
            pairs[sec, mux] = Pair(await _host(sec, mux, True), await _host(sec, mux, False))
        gate = asyncio.Semaphore(CONCURRENCY)

        async def one(plan: Plan) -> tuple[Plan, Outcome]:
            async with gate:
                return plan, await run_transfer(plan, pairs[plan.stack])

        return list(await asyncio.gather(*(one(p) for p in plans)))
    finally:
        for pair in pairs.values():
            for host in (pair.client, pair.server):
                async with asyncio.timeout(CLEANUP_TIMEOUT):
                    await host.stop()


async def _check_nothing_left(
    own: set[asyncio.Task[object]], base_fds: int, base_socks: int, label: str
) -> None:
    await _wait_for(lambda: not _tasks(own), 10.0)
    left = _tasks(own)
    assert not left, f"{label}: tasks left behind: {sorted(map(repr, left))[:5]}"
    await _wait_for(lambda: _fds()[0] <= base_fds + FD_SLACK and _fds()[1] <= base_socks, 10.0)
    fds, socks = _fds()
    assert socks <= base_socks, (
        f"{label}: {socks - base_socks} sockets left behind: {_open_transports()}"
    )
    assert fds <= base_fds + FD_SLACK, f"{label}: {fds - base_fds} descriptors left behind"


@pytest.mark.parametrize("part", range(PARTS))
async def test_transfers_killed_at_random_points(part: int) -> None:
    own = {t for t in asyncio.all_tasks() if not t.done()}
    base_fds, base_socks = _fds()
    rng = random.Random(SEED * 31 + part)
    print(f"\nfault injection seed {SEED} (P2PKIT_FAULT_SEED={SEED} replays it), part {part}")
    counts: collections.Counter[tuple[str, str]] = collections.Counter()
    failures: list[str] = []
    for b in range(BATCHES_PER_PART):
        first = (part * BATCHES_PER_PART + b) * BATCH
        results = await run_batch(make_plans(rng, first, BATCH))
        for plan, outcome in results:
            counts[plan.kind, outcome.kind if outcome.kind != "typed" else outcome.detail] += 1
            if outcome.failed:
                failures.append(f"{plan}: {outcome.kind}: {outcome.detail}")
        await _check_nothing_left(own, base_fds, base_socks, f"part {part} batch {b}")
    for kind in KINDS:
        row = {o: n for (k, o), n in sorted(counts.items()) if k == kind}
        print(f"  {kind:13} {sum(row.values()):4}  {row}")
    assert not failures, f"seed {SEED}: {len(failures)} transfers failed:\n" + "\n".join(
        failures[:20]
    )
    assert sum(counts.values()) == BATCHES_PER_PART * BATCH
    # Not vacuous: every kind of fault did kill transfers (each has ~30 per part, most
    # of them fire mid-transfer).
    for kind in KINDS[1:]:
        killed = sum(n for (k, o), n in counts.items() if k == kind and o != "ok")
        assert killed > 0, f"seed {SEED}: no {kind} fault raised an error"
