"""The interop operations, one function per (direction, operation), shared by the test files.

`p2pkit_*` functions: p2pkit's CLI dials a js listener. `js_*` functions: the js
peer dials a p2pkit listener. Each runs one bounded command, checks its JSON
result, checks which security protocol and muxer were really negotiated (the
js side reports it: its listener prints CONNECTION lines, its dialer returns
`encryption`/`multiplexer`), and checks the listener survived.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from .harness import JsPeer, ListenerProcess, MiB, P2pkitListener, run_js, run_p2pkit

#: QUIC brings its own security and muxing: tests pass QUIC as both "security" and
#: "muxer", no --security/--muxer options go to either peer, and js reports such a
#: connection as encryption "native", multiplexer "quic".
QUIC = "quic"
SECURITY_IDS = {
    "noise": "/noise",
    "tls": "/tls/1.0.0",
    "plaintext": "/plaintext/2.0.0",
    QUIC: "native",
}
MUXER_IDS = {"yamux": "/yamux/1.0.0", "mplex": "/mplex/6.7.0", QUIC: "quic"}
STANDARD_PROTOCOLS = {"/ipfs/ping/1.0.0", "/ipfs/id/1.0.0", "/echo/1.0.0", "/perf/1.0.0"}

BIG = 64 * MiB
BIG_TIMEOUT = 150.0


def _opts(security: str, muxer: str) -> list[str]:
    """Command-line stack options; none for QUIC (the address selects the transport)."""
    if security == QUIC:
        return []
    return ["--security", security, "--muxer", muxer]


def served_perf(listener: ListenerProcess, before: int, timeout: float = 10.0) -> dict[str, Any]:
    """The listener's `PERF {json}` line for the perf stream after the first `before`
    ones: the byte counts the *server* saw (a client only knows what it meant to send)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = listener.events("PERF")
        if len(found) > before:
            return found[before]
        time.sleep(0.02)
    pytest.fail(f"{listener.name} printed no PERF line\n{listener.describe()}", pytrace=False)


def assert_served(listener: ListenerProcess, before: int, up: int, down: int) -> None:
    served = served_perf(listener, before)
    assert (served["upload_bytes"], served["download_bytes"]) == (up, down), (
        f"server counted {served}, the client sent {up} and asked for {down}"
    )


# ---------------------------------------------------------------- p2pkit dials js


def js_saw(js: JsPeer, security: str, muxer: str) -> None:
    """Every connection the js listener accepted used `security` + `muxer`."""
    events = js.wait_event("CONNECTION")
    want = (SECURITY_IDS[security], MUXER_IDS[muxer])
    got = [(e["encryption"], e["multiplexer"]) for e in events]
    assert all(g == want for g in got), f"js listener negotiated {got}, expected {want}"
    js.assert_alive()


def p2pkit_ping(js: JsPeer, security: str, muxer: str, count: int = 5) -> dict[str, Any]:
    r = run_p2pkit(["ping", js.maddr, "--count", count, *_opts(security, muxer)])
    assert len(r["rtt_ms"]) == count
    assert all(isinstance(x, (int, float)) and x >= 0 for x in r["rtt_ms"])
    assert min(r["rtt_ms"]) <= r["median_ms"] <= max(r["rtt_ms"])
    js_saw(js, security, muxer)
    return r


def p2pkit_echo(
    js: JsPeer,
    security: str,
    muxer: str,
    streams: int,
    nbytes: int,
    timeout: float = 60.0,
) -> dict[str, Any]:
    """p2pkit writes `nbytes` on each of `streams` streams, half-closes, reads it all back."""
    r = run_p2pkit(
        ["echo", js.maddr, "--streams", streams, "--bytes", nbytes, *_opts(security, muxer)],
        timeout=timeout,
    )
    assert r["ok"] is True
    assert r["streams"] == streams
    assert r["bytes"] == nbytes
    js_saw(js, security, muxer)
    return r


def p2pkit_perf(js: JsPeer, security: str, muxer: str, up: int, down: int) -> dict[str, Any]:
    before = len(js.events("PERF"))
    r = run_p2pkit(["perf", js.maddr, "--upload", up, "--download", down, *_opts(security, muxer)])
    assert_served(js, before, up, down)
    assert r["upload_bytes"] == up
    assert r["download_bytes"] == down
    js_saw(js, security, muxer)
    return r


# ---------------------------------------------------------------- js dials p2pkit


def negotiated(r: dict[str, Any], security: str, muxer: str) -> None:
    got = (r["encryption"], r["multiplexer"])
    want = (SECURITY_IDS[security], MUXER_IDS[muxer])
    assert got == want, f"js dialer negotiated {got}, expected {want}"


def js_ping(
    p2p: P2pkitListener, security: str, muxer: str, *extra: str, count: int = 5
) -> dict[str, Any]:
    """js pings N times on one stream, then once more with js's stock ping service
    (a fresh stream: write, half-close, read)."""
    r = run_js("ping", p2p.maddr, "--count", count, *_opts(security, muxer), *extra)
    assert len(r["rtt_ms"]) == count
    assert r["remote_peer"] == p2p.peer_id
    assert r["service_rtt_ms"] >= 0
    negotiated(r, security, muxer)
    p2p.assert_alive()
    return r


def js_echo(
    p2p: P2pkitListener, security: str, muxer: str, streams: int, nbytes: int, *extra: str
) -> dict[str, Any]:
    """js writes `nbytes` random bytes per stream, half-closes, compares sha256 of the echo."""
    r = run_js(
        "echo",
        p2p.maddr,
        "--streams",
        streams,
        "--bytes",
        nbytes,
        *_opts(security, muxer),
        *extra,
    )
    assert r["ok"] is True
    assert (r["streams"], r["bytes"]) == (streams, nbytes)
    negotiated(r, security, muxer)
    p2p.assert_alive()
    return r


def js_transfer(
    p2p: P2pkitListener, security: str, muxer: str, nbytes: int = BIG
) -> dict[str, Any]:
    """One stream, `nbytes` echoed through p2pkit, sha256 compared by the js peer."""
    r = run_js(
        "transfer", p2p.maddr, "--bytes", nbytes, *_opts(security, muxer), timeout=BIG_TIMEOUT
    )
    assert r["ok"] is True
    assert r["bytes"] == nbytes
    negotiated(r, security, muxer)
    p2p.assert_alive()
    return r


def js_perf(p2p: P2pkitListener, security: str, muxer: str, up: int, down: int) -> dict[str, Any]:
    before = len(p2p.events("PERF"))
    r = run_js("perf", p2p.maddr, "--upload", up, "--download", down, *_opts(security, muxer))
    assert_served(p2p, before, up, down)
    assert (r["upload_bytes"], r["download_bytes"]) == (up, down)
    negotiated(r, security, muxer)
    p2p.assert_alive()
    return r


def wait_identify(js: JsPeer, peer_id: str, timeout: float = 10.0) -> dict[str, Any]:
    """The js listener's latest IDENTIFY result about `peer_id` (js identifies every
    new connection on its own); fails the test if none arrives in time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ours = [e for e in js.events("IDENTIFY") if e["peer_id"] == peer_id]
        if ours:
            return ours[-1]
        time.sleep(0.05)
    pytest.fail(f"js printed no IDENTIFY line about {peer_id}\n{js.describe()}", pytrace=False)
