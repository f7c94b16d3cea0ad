"""Hostile and good peers for ``test_hostile_peers.py``, run as separate processes.

``python hostile.py ATTACK HOST PORT PEER_ID --seconds S`` runs one attack against a
listener for ``S`` seconds and prints one JSON line of what it did; ``good`` is the good
peer: it keeps connecting (a fresh connection each round), pinging and transferring
through perf, and reports every round.  Every loop is bounded by the deadline and by a
count.  The attacks speak the real stack where they need to (Noise + Yamux, as the
listener's defaults), and raw TCP where the point is to never get that far.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import random
import struct
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

from p2pkit.config import HostBuilder
from p2pkit.errors import P2PError, StreamReset
from p2pkit.host import Host
from p2pkit.protocols.echo import PROTOCOL_ID as ECHO
from p2pkit.protocols.perf import PROTOCOL_ID as PERF
from p2pkit.protocols.perf import perf
from p2pkit.protocols.ping import PROTOCOL_ID as PING
from p2pkit.protocols.ping import ping

YAMUX = struct.Struct(">BBHII")  # version, type, flags, stream id, length
PING_SYN = YAMUX.pack(0, 2, 0x1, 0, 7)
MAX_ROUNDS = 100_000


#: An attacker that never reads what it asked for buffers it against its own memory
#: limits; lifted, so that any reset it sees comes from the listener.
UNLIMITED_MEMORY: dict[str, Any] = {
    "max_memory_per_peer": None, "max_memory_per_ip": None, "max_memory": None,
}


def client(transport: str = "tcp", **limits: Any) -> Host:
    builder = HostBuilder().transport(transport)
    if transport == "tcp":
        builder.security("noise").muxer("yamux")
    return (builder.limits(**limits) if limits else builder).build()


async def _flood(
    target: str, deadline: float, batches: Callable[[], Iterator[tuple[bytes, int]]]
) -> dict[str, Any]:
    """Write ``batches()`` (raw yamux frames, and how many) on fresh connections whose
    reading is paused, until the deadline; a connection the listener closes is replaced
    (at most 50)."""
    sent = 0
    connections = 0
    async with client() as host:
        while time.monotonic() < deadline and connections < 50:
            connections += 1
            try:
                conn = await host.connect(target)
            except (P2PError, OSError):
                await asyncio.sleep(0.05)
                continue
            conn.secure.pause_reading()
            try:
                for frames, count in itertools.islice(batches(), MAX_ROUNDS):
                    if time.monotonic() >= deadline:
                        break
                    conn.secure.write_nowait(frames)
                    sent += count
                    async with asyncio.timeout(max(0.01, deadline - time.monotonic())):
                        await conn.secure.drain()
            except (P2PError, OSError, TimeoutError):
                pass
            conn.muxed.abort()
    return {"frames": sent, "connections": connections}


async def ping_flood(target: str, deadline: float) -> dict[str, Any]:
    """Ping(SYN) frames without ever reading the replies (reading paused)."""
    return await _flood(target, deadline, lambda: itertools.repeat((PING_SYN * 256, 256)))


def _syn_batches() -> Iterator[tuple[bytes, int]]:
    """New yamux streams (WindowUpdate SYN), 64 per batch, from stream id 10,001 (odd:
    ours, far above what the session used)."""
    for first in itertools.count(10_001, 128):
        yield b"".join(YAMUX.pack(0, 1, 0x1, first + 2 * i, 0) for i in range(64)), 64


async def syn_flood(target: str, deadline: float) -> dict[str, Any]:
    """New yamux streams, never negotiated, never read."""
    return await _flood(target, deadline, _syn_batches)


PARKED_GRACE = 20.0
"""Seconds the parked streams go on past their deadline until the listener resets one
(a memory limit stopped them): on a loaded machine 4 s may not reach the limit (nor,
with other jobs on the 2 cores, 4 + 10 s: 717 streams parked, none reset yet)."""


async def parked_streams(target: str, deadline: float) -> dict[str, Any]:
    """Echo streams that send a lot and never read the echo back, until the deadline
    and then until the listener resets one of them (at most ``PARKED_GRACE`` more)."""
    streams: list[Any] = []
    refused = asyncio.Event()
    payload = os.urandom(1 << 20)
    # With its own limits, the attacker could reach them first, reset its own streams and
    # stop before the listener's limit did.  (Yamux's window bounds what it buffers.)
    async with client(**UNLIMITED_MEMORY) as host:
        try:
            conn = await host.connect(target)
        except (P2PError, OSError) as exc:
            return {"streams": 0, "error": type(exc).__name__}

        async def park() -> None:
            stream = await conn.new_stream([ECHO])
            streams.append(stream)
            try:
                await stream.write(payload)
            except StreamReset:
                refused.set()  # the listener's limit
            except (P2PError, OSError):
                pass

        tasks = []
        for _ in range(1000):
            if time.monotonic() >= deadline or conn.is_closed or refused.is_set():
                break
            tasks.append(asyncio.ensure_future(park()))
            await asyncio.sleep(0)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(0.01, deadline - time.monotonic())):
                await asyncio.gather(*tasks, return_exceptions=True)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(PARKED_GRACE):
                await refused.wait()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        conn.muxed.abort()
    return {"streams": len(streams), "refused": refused.is_set()}


async def quic_parked_streams(target: str, deadline: float) -> dict[str, Any]:
    """Over QUIC: echo streams that send 1 MiB each and never read the echo back, until
    the deadline.  QUIC's flow control, not a reset, stops them: the listener grants
    credit only as its echo handlers read, and they wait for our credit, which we
    never give back; what the listener may queue to send is bounded too."""
    payload = os.urandom(1 << 20)
    streams: list[Any] = []
    async with client("quic", **UNLIMITED_MEMORY) as host:
        try:
            conn = await host.connect(target)
        except (P2PError, OSError) as exc:
            return {"streams": 0, "error": type(exc).__name__}

        async def park() -> None:
            try:
                stream = await conn.new_stream([ECHO])  # waits beyond MAX_STREAMS
                streams.append(stream)
                await stream.write(payload)
            except (P2PError, OSError):
                pass

        tasks = [asyncio.ensure_future(park()) for _ in range(1000)]
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(0.01, deadline - time.monotonic())):
                await asyncio.gather(*tasks, return_exceptions=True)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        conn.muxed.abort()
    return {"streams": len(streams)}


async def quic_gaps(target: str, deadline: float) -> dict[str, Any]:
    """Over QUIC: a stream sent as one-byte frames, every other byte missing (through
    our own aioquic sender), on fresh connections until the deadline (at most 20).  The
    listener must close each (too many gaps) rather than spend CPU on every frame."""
    connections = closed = 0
    slowest = 0.0
    async with client("quic") as host:
        while time.monotonic() < deadline and connections < 20:
            try:
                conn = await host.connect(target)
            except (P2PError, OSError):
                await asyncio.sleep(0.05)
                continue
            connections += 1
            session: Any = conn.muxed
            quic = session.quic
            sid = quic.get_next_available_stream_id()
            quic.send_stream_data(sid, bytes(16_000))
            # Pending: the odd bytes only (set directly: 8000 subtracts are quadratic).
            pending = quic._streams[sid].sender._pending
            pending._RangeSet__ranges[:] = [range(o, o + 1) for o in range(1, 16_000, 2)]
            session.schedule_transmit()
            started = time.monotonic()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(2.0):  # past the deadline too: at most once
                    while not conn.is_closed:
                        await asyncio.sleep(0.01)
            closed += conn.is_closed
            slowest = max(slowest, time.monotonic() - started)
            session.abort()
    return {"connections": connections, "closed": closed, "slowest_close_s": round(slowest, 2)}


async def _raw_connections(host: str, port: int, n: int) -> list[asyncio.StreamWriter]:
    writers = []
    for _ in range(n):
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 2.0)
        except (OSError, TimeoutError):
            continue
        writers.append(writer)
    return writers


async def silent(host: str, port: int, deadline: float) -> dict[str, Any]:
    """300 TCP connections from one address that never say anything."""
    writers = await _raw_connections(host, port, 300)
    held = len(writers)
    await asyncio.sleep(max(0.0, deadline - time.monotonic()))
    alive = sum(1 for w in writers if not w.transport.is_closing())
    for w in writers:
        w.transport.abort()
    return {"opened": held, "still_open_at_end": alive}


async def slowloris(host: str, port: int, deadline: float) -> dict[str, Any]:
    """Connections that send the multistream header one byte every 0.5 s."""
    writers = await _raw_connections(host, port, 50)
    header = b"\x13/multistream/1.0.0\n"
    sent = 0
    for i in range(len(header)):
        if time.monotonic() >= deadline:
            break
        for w in writers:
            if not w.transport.is_closing():
                w.write(header[i : i + 1])
                sent += 1
        await asyncio.sleep(0.5)
    for w in writers:
        w.transport.abort()
    return {"connections": len(writers), "bytes": sent}


async def garbage(host: str, port: int, deadline: float) -> dict[str, Any]:
    """Connections that send random bytes, again and again."""
    rng = random.Random(7)
    rounds = 0
    for _ in range(MAX_ROUNDS):
        if time.monotonic() >= deadline:
            break
        writers = await _raw_connections(host, port, 10)
        for w in writers:
            w.write(rng.randbytes(rng.randrange(1, 70_000)))
        await asyncio.sleep(0.05)
        for w in writers:
            w.transport.abort()
        rounds += 1
    return {"rounds": rounds}


async def oversize(target: str, deadline: float) -> dict[str, Any]:
    """Yamux data frames far beyond the receive window, and a huge multistream message."""
    attempts = 0
    async with client() as host:
        for _ in range(200):
            if time.monotonic() >= deadline:
                break
            attempts += 1
            try:
                conn = await host.connect(target)
                if attempts % 2:
                    conn.secure.write_nowait(YAMUX.pack(0, 0, 0x1, 20_001, 0x7FFF_FFFF))
                    conn.secure.write_nowait(b"\0" * 65536)
                else:
                    stream = await conn.muxed.open_stream()
                    await stream.write(b"\xff\xff\xff\x7f" + b"a" * 65536)
                async with asyncio.timeout(2.0):
                    await conn.muxed.wait_closed()
            except (P2PError, OSError, TimeoutError):
                pass
            with contextlib.suppress(Exception):
                conn.muxed.abort()
    return {"attempts": attempts}


async def good(target: str, deadline: float) -> dict[str, Any]:
    """The good peer: fresh connection, ping, 1 MB each way, disconnect; every round."""
    rounds: list[dict[str, Any]] = []
    for _ in range(10_000):
        if time.monotonic() >= deadline:
            break
        start = time.monotonic()
        entry: dict[str, Any] = {"t": round(start, 3)}
        try:
            async with asyncio.timeout(10.0), client() as host:
                conn = await host.connect(target)
                rtt = await ping(await conn.new_stream([PING], lazy=True), 1)
                result = await perf(await conn.new_stream([PERF]), 1_000_000, 1_000_000)
                entry.update(ok=True, rtt_ms=round(rtt[0] * 1000, 2),
                             download=result.download_bytes)
        except (P2PError, OSError, TimeoutError) as exc:
            entry.update(ok=False, error=f"{type(exc).__name__}: {exc}")
        entry["seconds"] = round(time.monotonic() - start, 3)
        rounds.append(entry)
        await asyncio.sleep(0.2)
    return {"rounds": rounds}


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("attack")
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("peer_id")
    p.add_argument("--seconds", type=float, default=5.0)
    args = p.parse_args()
    target = f"/ip4/{args.host}/tcp/{args.port}/p2p/{args.peer_id}"
    if args.attack.startswith("quic_"):
        target = f"/ip4/{args.host}/udp/{args.port}/quic-v1/p2p/{args.peer_id}"
    deadline = time.monotonic() + args.seconds
    if args.attack in ("silent", "slowloris", "garbage"):
        out = await globals()[args.attack](args.host, args.port, deadline)
    else:
        out = await globals()[args.attack](target, deadline)
    print(json.dumps({"attack": args.attack, **out}), flush=True)


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
