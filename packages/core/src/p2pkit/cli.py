"""The ``p2pkit`` command line: what the interop tests and benchmarks drive (docs/interop.md).

Every command that dials or listens takes ``--security`` and ``--muxer`` (comma-separated
preference lists; default: what the installed plugins offer, Noise and Yamux first).
``--json`` prints one JSON object on stdout.  Exit 0 on success; on failure a one-line
reason on stderr and a non-zero exit code.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import hashlib
import json
import os
import signal
import statistics
import sys
import time
from collections.abc import Sequence
from typing import Any

from p2pkit.cliargs import DEFAULT_LISTEN, build_parser, check_perf_args, metrics_table
from p2pkit.cliprogress import (
    PerfProgress,
    megabytes,
    millis,
    perf_text,
    progress_line,
    rate,
    stack,
    wants_progress,
)
from p2pkit.config import load_config, read_table
from p2pkit.crypto import generate_private_key, write_private_key
from p2pkit.errors import ConfigError, P2PError
from p2pkit.host import Host
from p2pkit.logfmt import configure_logging
from p2pkit.loops import DEFAULT_EVENT_LOOP
from p2pkit.loops import run as run_loop
from p2pkit.peer import PeerId
from p2pkit.plugins.registry import default_registry
from p2pkit.protocols.echo import PROTOCOL_ID as ECHO
from p2pkit.protocols.perf import PROTOCOL_ID as PERF
from p2pkit.protocols.perf import PerfResult, PerfServed, perf, perf_timed, reporting_handler
from p2pkit.protocols.ping import PROTOCOL_ID as PING
from p2pkit.protocols.ping import ping


def _host(args: argparse.Namespace, *, listen: Sequence[str] = (), serve: bool = False) -> Any:

    overrides: dict[str, Any] = {}
    if args.security:
        overrides["security"] = args.security
    if args.muxer:
        overrides["muxers"] = args.muxer
    if args.transport:
        overrides["transports"] = args.transport
    if args.identity:
        overrides["identity"] = args.identity
    if getattr(args, "event_loop", None):
        overrides["event_loop"] = args.event_loop
    if listen:
        overrides["listen"] = list(listen)
    if getattr(args, "metrics", None):
        overrides["metrics"] = metrics_table(args.metrics)
    if serve:
        overrides["enable_echo"] = True
        overrides["enable_perf"] = True
    source: Any = args.config if args.config else {}
    return Host(load_config(source, overrides=overrides))


def _emit(args: argparse.Namespace, obj: dict[str, Any], text: str) -> None:
    if getattr(args, "json", False):
        print(json.dumps(obj), flush=True)
    else:
        print(text, flush=True)


# -- commands --------------------------------------------------------------------------------


def cmd_id(args: argparse.Namespace) -> int:

    key = generate_private_key(args.key_type)
    peer = PeerId.from_public_key(key.public_key)
    if args.out:
        write_private_key(args.out, key, format=args.format)
    _emit(args, {"peer_id": str(peer), "key_type": args.key_type, "file": args.out}, str(peer))
    return 0


async def cmd_listen(args: argparse.Namespace) -> int:
    host = _host(args, listen=args.listen or ([] if args.config else [DEFAULT_LISTEN]), serve=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    async with host:
        _report_perf(host)
        if not host.listen_addrs:
            await host.listen(DEFAULT_LISTEN)
        for addr in host.listen_addrs:
            print(f"LISTEN {addr}/p2p/{host.peer_id}", flush=True)
        if host.metrics is not None and host.metrics.endpoint:
            print(f"METRICS {host.metrics.endpoint}", flush=True)
        await stop.wait()
    return 0


def _report_perf(host: Any) -> None:
    """A ``PERF {json}`` stdout line per perf stream: the bytes this server received,
    so tests compare what arrived, not what the client meant to send."""

    def report(served: PerfServed) -> None:
        print(f"PERF {json.dumps(dataclasses.asdict(served))}", flush=True)

    host.set_stream_handler(PERF, reporting_handler(report))


async def _dial(host: Any, addr: str) -> tuple[Any, float]:
    start = time.perf_counter()
    conn = await host.connect(addr)
    return conn, (time.perf_counter() - start) * 1000


async def cmd_ping(args: argparse.Namespace) -> int:
    async with _host(args) as host:
        conn, connect_ms = await _dial(host, args.addr)
        stream = await conn.new_stream([PING], lazy=True)  # writes, then reads
        rtts = [r * 1000 for r in await ping(stream, args.count)]
    med = statistics.median(rtts)
    _emit(
        args,
        {
            "rtt_ms": [round(r, 3) for r in rtts],
            "median_ms": round(med, 3),
            "connect_ms": round(connect_ms, 3),
        },
        "\n".join(f"pong: {r:.3f} ms" for r in rtts) + f"\nmedian {med:.3f} ms",
    )
    return 0


async def _echo_one(conn: Any, nbytes: int, moved: list[int] | None = None) -> None:
    stream = await conn.new_stream([ECHO])
    payload = os.urandom(nbytes)
    want = hashlib.sha256(payload).digest()

    async def writer() -> None:
        view = memoryview(payload)
        for i in range(0, nbytes, 256 * 1024):
            await stream.write(view[i : i + 256 * 1024])
        await stream.close_write()

    async def reader() -> bytes:
        h = hashlib.sha256()
        got = 0
        while True:
            data = await stream.read(1 << 20)
            if not data:
                break
            h.update(data)
            got += len(data)
            if moved is not None:
                moved[0] += len(data)
        if got != nbytes:
            raise P2PError(f"echo: sent {nbytes} bytes, got {got} back")
        return h.digest()

    _, digest = await asyncio.gather(writer(), reader())
    await stream.close()
    if digest != want:
        raise P2PError("echo: data came back different")
    if moved is not None:
        moved[1] += 1


async def cmd_echo(args: argparse.Namespace) -> int:
    moved = [0, 0]  # bytes echoed back so far, streams done (for the progress line)
    async with _host(args) as host:
        conn, connect_ms = await _dial(host, args.addr)
        start = time.perf_counter()

        def render() -> str:
            return (
                f"echo: {moved[1]}/{args.streams} streams done, {megabytes(moved[0])} back, "
                f"{rate(moved[0], time.perf_counter() - start)}"
            )

        async with progress_line(render, wants_progress(args.json)):
            await asyncio.gather(*(_echo_one(conn, args.bytes, moved) for _ in range(args.streams)))
        seconds = time.perf_counter() - start
        via = stack(conn)
    total = args.streams * args.bytes
    _emit(
        args,
        {
            "ok": True,
            "streams": args.streams,
            "bytes": args.bytes,
            "seconds": round(seconds, 6),
            "connect_ms": round(connect_ms, 3),
        },
        f"connected in {connect_ms:.2f} ms over {via}\n"
        f"echo ok: {args.streams} stream(s) x {args.bytes} bytes in {millis(seconds)} "
        f"({megabytes(total)} each way, {rate(total, seconds)})",
    )
    return 0


async def cmd_perf(args: argparse.Namespace) -> int:
    progress = PerfProgress()
    async with _host(args) as host:
        conn, connect_ms = await _dial(host, args.addr)
        stream = await conn.new_stream([PERF])
        progress.start = time.perf_counter()
        async with progress_line(progress.render, wants_progress(args.json)):
            result = await _run_perf(args, stream, progress)
        via = stack(conn)
    obj = {**result.as_dict(), "connect_ms": round(connect_ms, 3)}
    _emit(args, obj, perf_text(result, connect_ms, via))
    return 0


async def _run_perf(args: argparse.Namespace, stream: Any, progress: PerfProgress) -> PerfResult:
    if args.duration is None:
        return await perf(stream, args.upload or 0, args.download or 0, progress=progress)
    up = args.duration if args.direction in ("both", "upload") else 0.0
    down = args.duration if args.direction in ("both", "download") else 0.0
    return await perf_timed(stream, up, down, progress=progress)


async def cmd_identify(args: argparse.Namespace) -> int:
    async with _host(args) as host:
        conn, _ = await _dial(host, args.addr)
        service = host.identify
        if service is None:
            raise P2PError("identify is disabled in this configuration")
        info = await service.identify(conn)
        obj = {
            "peer_id": str(conn.peer),
            "agent_version": info.agent_version,
            "protocol_version": info.protocol_version,
            "protocols": info.protocols,
            "listen_addrs": [str(a) for a in info.multiaddrs()],
            "observed_addr": str(info.observed()) if info.observed() else None,
            "public_key_type": host.peerstore.public_key(conn.peer).key_type.name
            if host.peerstore.public_key(conn.peer)
            else None,
        }
    text = "\n".join(f"{k}: {v}" for k, v in obj.items())
    _emit(args, obj, text)
    return 0


def cmd_plugins(args: argparse.Namespace) -> int:

    reg = default_registry()
    rows = []
    for spec in reg.all_specs():
        rows.append(
            {
                "name": spec.name,
                "kind": spec.kind,
                "protocol_id": spec.protocol_id,
                "package": spec.package,
                "version": spec.version,
                "description": spec.description,
            }
        )
    broken = [
        {"name": b.name, "package": b.package, "error": f"{type(b.error).__name__}: {b.error}"}
        for b in reg.broken
    ]
    if args.json:
        print(json.dumps({"plugins": rows, "broken": broken}), flush=True)
        return 0
    width = max((len(str(r["name"])) for r in rows), default=4)
    for r in rows:
        print(
            f"{r['kind']:<18} {r['name']:<{width}}  {r['protocol_id'] or '-':<22} "
            f"{r['package'] or '-'} {r['version'] or ''}".rstrip()
        )
    for b in broken:
        print(f"BROKEN {b['name']} ({b['package']}): {b['error']}", file=sys.stderr)
    return 0


async def cmd_demo(args: argparse.Namespace) -> int:

    server = _host(args, listen=[DEFAULT_LISTEN], serve=True)
    client = _host(args)
    out: dict[str, Any] = {}
    async with server, client:
        addr = server.addrs_with_peer_id[0]
        conn, connect_ms = await _dial(client, str(addr))
        out["listen"] = str(addr)
        out["client"] = str(client.peer_id)
        out["stack"] = f"{conn.security_protocol} + {conn.muxer_protocol}" + (
            " (muxer agreed in the handshake)" if conn.early_muxer else ""
        )
        out["connect_ms"] = round(connect_ms, 3)
        rtts = await ping(await conn.new_stream([PING], lazy=True), 5)
        out["ping_median_ms"] = round(statistics.median(rtts) * 1000, 3)
        if client.identify is None:
            raise P2PError("identify is disabled in this configuration")
        info = await client.identify.identify(conn)
        out["identify"] = {"agent_version": info.agent_version, "protocols": info.protocols}
        result = await perf(await conn.new_stream([PERF]), args.bytes, args.bytes)
        out["perf"] = result.as_dict()
    if args.json:
        print(json.dumps(out), flush=True)
    else:
        print(f"server listening on {out['listen']}")
        print(f"client {out['client']} connected in {out['connect_ms']} ms over {out['stack']}")
        print(f"ping: median {out['ping_median_ms']} ms over 5 pings")
        print(f"identify: agent {info.agent_version!r}, protocols {', '.join(info.protocols)}")
        p = out["perf"]
        print(
            f"perf: upload {p['upload_bytes']} B at {p['upload_MBps']} MB/s, "
            f"download {p['download_bytes']} B at {p['download_MBps']} MB/s"
        )
        print("demo ok")
    return 0


ASYNC = {
    "listen": cmd_listen,
    "ping": cmd_ping,
    "echo": cmd_echo,
    "perf": cmd_perf,
    "identify": cmd_identify,
    "demo": cmd_demo,
}


async def _with_timeout(args: argparse.Namespace) -> int:
    coro = ASYNC[args.command](args)
    if args.command == "listen":
        return await coro
    limit = args.timeout
    if getattr(args, "duration", None) is not None:
        limit += 2 * args.duration  # --timeout bounds what is not the timed run
    async with asyncio.timeout(limit):
        return await coro


# -- operator options: logs and the event loop -------------------------------------------


def _event_loop(args: argparse.Namespace) -> str:
    """``--event-loop``, else ``event_loop`` in the ``--config`` file, else asyncio.  A
    file that cannot be read is reported by the configuration, not here."""
    if args.event_loop:
        return str(args.event_loop)
    if args.config:
        try:
            value = read_table(args.config).get("event_loop")
        except ConfigError:
            return DEFAULT_EVENT_LOOP
        if isinstance(value, str):
            return value
    return DEFAULT_EVENT_LOOP


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "perf":
        check_perf_args(parser, args)
    configure_logging(args.log_level, args.log_format)
    try:
        if args.command == "id":
            return cmd_id(args)
        if args.command == "plugins":
            return cmd_plugins(args)
        return run_loop(_with_timeout(args), _event_loop(args))
    except KeyboardInterrupt:
        return 130
    except TimeoutError:
        print(f"p2pkit {args.command}: timed out", file=sys.stderr)
        return 2
    except (P2PError, OSError, ValueError) as exc:
        print(f"p2pkit {args.command}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
