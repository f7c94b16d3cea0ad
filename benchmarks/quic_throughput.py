"""QUIC against TCP + Noise + Yamux, p2pkit <-> p2pkit, side by side in one run.

    python benchmarks/quic_throughput.py                   # every scenario, 3 runs each
    python benchmarks/quic_throughput.py --bytes 64MiB --runs 5 --scenario throughput
    python benchmarks/quic_throughput.py --json            # one JSON object at the end

Two processes on loopback: a listener host (``--serve``, a child process: TCP + Noise +
Yamux and QUIC, perf and echo enabled) and a dialer host (this process).  For each
stack, alternating QUIC and TCP run by run so that both see the same machine load:

* ``throughput``: one perf stream (``/perf/1.0.0``), upload then download of
  ``--bytes``; upload time runs until the listener confirmed it drained everything
  (its FIN), download time from the request to the last byte.  MB = 10**6 bytes.
* ``connect``: a new connection (dial, handshake, for TCP also multistream-select,
  Noise and yamux) plus the first ping on it, ``--connects`` times per run; the
  connection is closed between tries (median per run).  ``cpu_ms_dialer`` /
  ``cpu_ms_listener``: each process's CPU per connect (including the disconnect).
* ``echo``: ``--streams`` concurrent streams on one connection, each echoing 1 KiB with
  half-close (``/echo/1.0.0``); the time for all of them.

``--rtt MS`` sends both stacks through ``_delay_relay.py``, a relay process that
delays every packet (UDP) and chunk (TCP) by ``MS / 2`` each way: a path where round
trips cost time, as on a real network (on plain loopback only CPU counts).

Each line also gives both processes' CPU seconds for the run (``cpu dialer/listener``);
``CPU-bound`` rate = bytes / the busier process's CPU time: what a machine with a free
core per process would reach (wall-clock figures mean little while other jobs share the
cores).  Prints one line per run and a median per scenario and stack.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _throughput import parse_size
from multiaddr import Multiaddr

from p2pkit.builder import HostBuilder
from p2pkit.host import Host
from p2pkit.protocols.echo import PROTOCOL_ID as ECHO
from p2pkit.protocols.perf import PROTOCOL_ID as PERF
from p2pkit.protocols.perf import perf
from p2pkit.protocols.ping import PROTOCOL_ID as PING
from p2pkit.protocols.ping import ping

STACKS = ("quic", "tcp")


def _builder(datagram: int) -> HostBuilder:
    return (
        HostBuilder()
        .transport("tcp")
        .transport("quic", loopback_datagram_size=datagram)
        .security("noise")
        .muxer("yamux")
        .option(enable_echo=True, enable_perf=True)
    )


# -- the listener (child process) ----------------------------------------------------------


async def _serve(datagram: int) -> None:
    """Listen on TCP and QUIC; answer ``cpu`` lines with this process's CPU seconds."""
    host = _builder(datagram).listen("/ip4/127.0.0.1/tcp/0").listen("/ip4/127.0.0.1/udp/0/quic-v1")
    host_ = await host.build().start()
    by = {a.protocols()[-1].name: a for a in host_.listen_addrs}
    print("LISTEN", by["tcp"], by["quic-v1"], host_.peer_id, flush=True)
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            break
        print(json.dumps({"cpu": time.process_time()}), flush=True)
    await host_.stop()


# -- the dialer (this process) -------------------------------------------------------------


class Listener:
    """The child process: its addresses, and its CPU clock read over stdin/stdout."""

    def __init__(self, datagram: int) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--serve", "--loopback-datagram-size", str(datagram)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        _, tcp, quic, peer = self.proc.stdout.readline().split()
        self.addrs = {
            "tcp": Multiaddr(f"{tcp}/p2p/{peer}"),
            "quic": Multiaddr(f"{quic}/p2p/{peer}"),
        }

    def relay(self, rtt_ms: float) -> subprocess.Popen[str]:
        """Route both addresses through ``_delay_relay.py`` (``rtt_ms`` round trip)."""
        tcp, quic = self.addrs["tcp"], self.addrs["quic"]
        relay = subprocess.Popen(
            [
                sys.executable,
                str(Path(__file__).with_name("_delay_relay.py")),
                *("--delay-ms", str(rtt_ms / 2)),
                *("--tcp", f"127.0.0.1:{tcp.value_for_protocol('tcp')}"),
                *("--udp", f"127.0.0.1:{quic.value_for_protocol('udp')}"),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert relay.stdout is not None
        _, tcp_port, udp_port = relay.stdout.readline().split()
        peer = tcp.value_for_protocol("p2p")
        self.addrs = {
            "tcp": Multiaddr(f"/ip4/127.0.0.1/tcp/{tcp_port}/p2p/{peer}"),
            "quic": Multiaddr(f"/ip4/127.0.0.1/udp/{udp_port}/quic-v1/p2p/{peer}"),
        }
        return relay

    def cpu(self) -> float:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("cpu\n")
        self.proc.stdin.flush()
        return float(json.loads(self.proc.stdout.readline())["cpu"])

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


async def _measured(listener: Listener, work: Any) -> tuple[Any, float, float]:
    """Run ``work()``; returns its result and both processes' CPU seconds for it."""
    cpu_l, cpu_d = listener.cpu(), time.process_time()
    result = await work()
    return result, time.process_time() - cpu_d, listener.cpu() - cpu_l


async def _throughput(host: Host, addr: Multiaddr, total: int) -> dict[str, float]:
    conn = await host.connect(addr)
    up = await perf(await conn.new_stream(PERF), total, 0)
    down = await perf(await conn.new_stream(PERF), 0, total)
    await host.disconnect(conn.peer)
    return {
        "upload_MBps": total / (up.upload_seconds + up.download_seconds) / 1e6,
        "download_MBps": total / down.download_seconds / 1e6,
    }


async def _connect(host: Host, addr: Multiaddr, tries: int) -> dict[str, float]:
    times = []
    for _ in range(tries):
        start = time.perf_counter()
        conn = await host.connect(addr)
        await ping(await conn.new_stream(PING), 1)
        times.append(time.perf_counter() - start)
        await host.disconnect(conn.peer)
    return {"connect_ping_ms": statistics.median(times) * 1e3}


async def _echo(host: Host, addr: Multiaddr, streams: int) -> dict[str, float]:
    conn = await host.connect(addr)
    payload = os.urandom(1024)

    async def one() -> None:
        stream = await conn.new_stream(ECHO)
        await stream.write(payload)
        await stream.close_write()
        got = b""
        while chunk := await stream.read():
            got += chunk
        assert got == payload

    start = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(streams)))
    took = time.perf_counter() - start
    await host.disconnect(conn.peer)
    return {"echo_seconds": took, "echo_streams_per_s": streams / took}


async def _run(args: argparse.Namespace, listener: Listener) -> dict[str, Any]:
    # The dialer listens too, as a node does: QUIC dials then leave from its socket.
    datagram = args.loopback_datagram_size
    host = await _builder(datagram).listen("/ip4/127.0.0.1/udp/0/quic-v1").build().start()
    total = parse_size(args.bytes)
    results: dict[str, Any] = {}
    try:
        for scenario in args.scenario or ["throughput", "connect", "echo"]:
            for run in range(args.runs):
                for stack in STACKS:
                    addr = listener.addrs[stack]
                    if scenario == "throughput":
                        work: Any = lambda a=addr: _throughput(host, a, total)  # noqa: E731
                    elif scenario == "connect":
                        work = lambda a=addr: _connect(host, a, args.connects)  # noqa: E731
                    else:
                        work = lambda a=addr: _echo(host, a, args.streams)  # noqa: E731
                    figures, cpu_d, cpu_l = await _measured(listener, work)
                    figures = {**figures, "cpu_dialer": cpu_d, "cpu_listener": cpu_l}
                    if scenario == "throughput":
                        figures["cpu_bound_MBps"] = 2 * total / max(cpu_d, cpu_l) / 1e6
                    elif scenario == "connect":
                        # CPU per connect + ping (and the disconnect): what the two
                        # processes spend, the figure least disturbed by other load.
                        figures["cpu_ms_dialer"] = cpu_d / args.connects * 1e3
                        figures["cpu_ms_listener"] = cpu_l / args.connects * 1e3
                    results.setdefault(scenario, {}).setdefault(stack, []).append(figures)
                    shown = "  ".join(f"{k} {v:.2f}" for k, v in figures.items())
                    print(f"{scenario:10} {stack:4} run {run + 1}: {shown}", flush=True)
    finally:
        await host.stop()
    summary: dict[str, Any] = {}
    for scenario, stacks in results.items():
        for stack, runs in stacks.items():
            medians = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
            summary.setdefault(scenario, {})[stack] = medians
            shown = "  ".join(f"{k} {v:.2f}" for k, v in medians.items())
            print(f"median {scenario:10} {stack:4} ({len(runs)} runs): {shown}")
    return summary


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--bytes", default="256MiB", help="per direction (default 256MiB)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--connects", type=int, default=20, help="connections per connect run")
    ap.add_argument("--streams", type=int, default=1000, help="concurrent echo streams")
    ap.add_argument(
        "--scenario", action="append", choices=["throughput", "connect", "echo"], default=None
    )
    ap.add_argument(
        "--loopback-datagram-size",
        type=int,
        default=65000,
        help="QUIC datagrams on loopback (p2pkit-quic's default 65000; 0: 1452 bytes)",
    )
    ap.add_argument(
        "--rtt",
        type=float,
        default=0.0,
        help="round trip in ms added by a relay process (_delay_relay.py) on both stacks' "
        "paths (0, the default: plain loopback)",
    )
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if args.serve:
        asyncio.run(_serve(args.loopback_datagram_size))
        return
    listener = Listener(args.loopback_datagram_size)
    relay = listener.relay(args.rtt) if args.rtt else None
    try:
        summary = asyncio.run(_run(args, listener))
    finally:
        listener.close()
        if relay is not None:
            assert relay.stdin is not None and relay.stdout is not None
            relay.stdin.close()
            try:
                relay.wait(10)
            except subprocess.TimeoutExpired:
                relay.kill()
                relay.wait()
            relay.stdout.close()
    if args.json:
        print(json.dumps(summary))


if __name__ == "__main__":
    main()
