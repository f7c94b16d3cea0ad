"""Hostile peers against one listener with its defaults, while a good peer is served.

The listener (``p2pkit listen``, default configuration: Noise + Yamux over TCP, and
QUIC on the same port number) runs in a network
namespace of its own; the good peer and the attackers run in two more namespaces, each
with its own address, linked to the listener by veth pairs.  So the listener sees the
attackers at one address and the good peer at another, as on a real network, and its
per-IP limits apply with their defaults (loopback is exempt from them, as in go-libp2p).

Each attack (ping flood, SYN flood, parked streams, 300 silent connections from one
address, slowloris, garbage, oversize frames; over QUIC: parked streams, and streams
sent as one-byte frames full of gaps) runs in turn; the good peer connects over TCP,
pings and transfers 1 MB each way throughout.  Every good round must succeed and the
listener's RSS must stay under ``RSS_BOUND_MIB``.

Why 250 MiB, from the listener's defaults (``p2pkit.limits.ResourceLimits``): it starts
at about 45 MiB.  The costliest attack is the parked streams (1000 ``/echo/1.0.0``
streams on one connection, each sending 1 MiB and never reading the echo).  What the
muxer buffers for that peer, received and not yet read, is reserved against
``max_memory_per_peer`` = 64 MiB (streams beyond it are reset); each echo handler holds
at most 16 KiB it read while it waits to write it back (``protocols.echo.CHUNK``), for
at most 1000 streams (yamux ``max_streams``): 15.6 MiB.  So at most about 45 + 64 + 16
= 125 MiB is live at once, plus what the allocator keeps: peaks of 136 to 146 MiB RSS on
Python 3.11 and 3.13, beside a CPU hog too.  (Until the streams reset by the limit stopped
keeping the frames of the read that tripped it, through their error's traceback, each
held a whole read: this attack then reached 275 to 340 MiB.  Before the memory limits it
alone took the listener past 500 MiB and kept growing.)  The attacker lifts its own
memory limits, so that the resets it sees are the listener's.  The 300 silent
connections must cost no receive buffer before admission, and the floods are bounded
by the muxers' control-frame limits.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .hostile import PARKED_GRACE

HERE = Path(__file__).parent
ATTACKS = ["ping_flood", "syn_flood", "parked_streams", "silent", "slowloris", "garbage",
           "oversize", "quic_parked_streams", "quic_gaps"]
ATTACK_SECONDS = 4.0
#: What the listener may grow to while under attack (see the module docstring).
RSS_BOUND_MIB = 250

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("ip") is None,
    reason="needs root and iproute2 to create network namespaces",
)


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


class Net:
    """Three namespaces: ``srv`` (10.77.1.1 and 10.77.2.1), ``good`` (10.77.1.2) and
    ``bad`` (10.77.2.2); removed on exit."""

    def __init__(self) -> None:
        tag = secrets.token_hex(3)
        self.srv, self.good, self.bad = (f"p2pk-{n}-{tag}" for n in ("srv", "good", "bad"))
        self.created: list[str] = []

    def __enter__(self) -> Net:
        for ns in (self.srv, self.good, self.bad):
            _ip("netns", "add", ns)
            self.created.append(ns)
            _ip("-n", ns, "link", "set", "lo", "up")
        for i, ns in ((1, self.good), (2, self.bad)):
            a, b = f"vs{i}{self.srv[-6:]}", f"vc{i}{self.srv[-6:]}"
            _ip("link", "add", a, "netns", self.srv, "type", "veth", "peer", "name", b,
                "netns", ns)
            _ip("-n", self.srv, "addr", "add", f"10.77.{i}.1/24", "dev", a)
            _ip("-n", ns, "addr", "add", f"10.77.{i}.2/24", "dev", b)
            _ip("-n", self.srv, "link", "set", a, "up")
            _ip("-n", ns, "link", "set", b, "up")
        return self

    def __exit__(self, *exc: object) -> None:
        for ns in self.created:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=10)

    def popen(self, ns: str, *args: str, **kw: object) -> subprocess.Popen[str]:
        return subprocess.Popen(
            ["ip", "netns", "exec", ns, sys.executable, *args],
            text=True,
            env={**os.environ, "PYTHONWARNINGS": "ignore"},
            **kw,  # type: ignore[arg-type]
        )


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.fixture
def net() -> Iterator[Net]:
    with Net() as n:
        yield n


# Nine attacks of 4 s each, one after another, plus start-up: ~50 s on an idle machine,
# past pytest's default 60 s on a loaded one (every wait inside is bounded).
@pytest.mark.timeout(180)
def test_listener_serves_good_peer_through_attacks(net: Net, tmp_path: Path) -> None:
    log = (tmp_path / "listener.log").open("w")  # not a pipe: nobody reads it meanwhile
    listener = net.popen(
        net.srv, "-m", "p2pkit", "listen", "--listen", "/ip4/0.0.0.0/tcp/4001",
        "--listen", "/ip4/0.0.0.0/udp/4001/quic-v1",
        stdout=subprocess.PIPE, stderr=log,
    )
    procs: list[subprocess.Popen[str]] = [listener]
    try:
        assert listener.stdout is not None
        line = listener.stdout.readline()
        assert line.startswith("LISTEN "), line
        peer_id = line.split("/p2p/")[1].strip()
        baseline = rss_mib(listener.pid)
        total = ATTACK_SECONDS * len(ATTACKS) + PARKED_GRACE + 2.0
        good = net.popen(net.good, str(HERE / "hostile.py"), "good", "10.77.1.1", "4001",
                         peer_id, "--seconds", str(total), stdout=subprocess.PIPE)
        procs.append(good)
        peak = baseline
        reports = {}
        for attack in ATTACKS:
            proc = net.popen(net.bad, str(HERE / "hostile.py"), attack, "10.77.2.1", "4001",
                             peer_id, "--seconds", str(ATTACK_SECONDS), stdout=subprocess.PIPE)
            procs.append(proc)
            end = time.monotonic() + ATTACK_SECONDS + 30
            while proc.poll() is None and time.monotonic() < end:
                peak = max(peak, rss_mib(listener.pid))
                time.sleep(0.1)
            out, _ = proc.communicate(timeout=10)
            assert proc.returncode == 0, (attack, out)
            reports[attack] = json.loads(out.strip().splitlines()[-1])
            reports[attack]["listener_rss_mib"] = round(rss_mib(listener.pid))
            reports[attack]["peak_mib"] = round(peak)
            assert listener.poll() is None, f"listener died during {attack}"
        out, _ = good.communicate(timeout=total + 60)
        rounds = json.loads(out.strip().splitlines()[-1])["rounds"]
        failed = [r for r in rounds if not r["ok"]]
        print(f"listener RSS {baseline:.0f} MiB -> peak {peak:.0f} MiB; "
              f"{len(rounds)} good rounds, {len(failed)} failed; {reports}")
        for r in failed[:5]:
            print("failed round:", r)
        assert len(rounds) >= 10, rounds
        assert not failed, (failed, reports)
        assert peak < RSS_BOUND_MIB, (peak, baseline, reports)
        log.flush()
        # The parked streams were stopped by a memory limit (not by luck): per peer, or,
        # when the attacker's streams land in a different order under load, per
        # connection or per IP first.  (The attack goes on past its 4 s until a stream is
        # reset, for at most PARKED_GRACE more: under load 4 s may not reach the limit.)
        parked = reports["parked_streams"]
        assert reports["quic_parked_streams"]["streams"] > 0, reports["quic_parked_streams"]
        gaps = reports["quic_gaps"]
        assert gaps["connections"] > 0 and gaps["closed"] == gaps["connections"], gaps
        text = (tmp_path / "listener.log").read_text()
        memory_limits = ("max_memory_per_peer", "max_muxer_memory_per_conn", "max_memory_per_ip")
        # The listener's log says so (parked streams are the only attack that reaches a
        # memory limit).  The attacker sees the reset only while its write still waits,
        # and a write the listener's window let finish misses it: seen in CI with other
        # jobs on the machine (1000 streams parked, ``refused`` False), so its own
        # report is not required.
        assert any(name in text for name in memory_limits), (parked, text[-2000:])
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            if p.stdout is not None:
                p.stdout.close()
        log.close()
