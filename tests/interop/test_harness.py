"""The harness and the js peer on their own (js <-> js), so that when a p2pkit test
fails it is clear the js side and the harness work: a js dialer against a js
listener (TCP and QUIC), and a crashed listener turning into a test failure."""

from __future__ import annotations

import os
import signal

import pytest

from . import checks
from .harness import LOOPBACK_QUIC, JsPeer, run_js, run_js_result, strip_p2p

pytestmark = pytest.mark.interop


def test_js_to_js_echo_and_negotiation() -> None:
    with JsPeer("tls,noise", "mplex,yamux") as js:
        r = run_js("echo", js.maddr, "--streams", 10, "--bytes", 10_000, "--security", "noise")
        assert r["ok"] is True
        checks.negotiated(r, "noise", "yamux")
        assert r["remote_peer"] == js.peer_id
        checks.js_saw(js, "noise", "yamux")


def test_js_to_js_quic() -> None:
    """@chainsafe/libp2p-quic on both sides: every op the p2pkit QUIC tests use."""
    with JsPeer(None, None, listen=LOOPBACK_QUIC) as js:
        assert strip_p2p(js.maddr).endswith("/quic-v1"), js.addrs
        r = run_js("ping", js.maddr, "--count", 3)
        checks.negotiated(r, checks.QUIC, checks.QUIC)
        r = run_js("echo", js.maddr, "--streams", 20, "--bytes", 10_000)
        assert r["ok"] is True
        r = run_js("perf", js.maddr, "--upload", 1_000_000, "--download", 1_000_000)
        checks.assert_served(js, 0, 1_000_000, 1_000_000)
        r = run_js("identify", js.maddr)
        assert strip_p2p(js.maddr) in r["listen_addrs"]
        assert "/udp/" in r["observed_addr"] and "/quic-v1" in r["observed_addr"]
        checks.js_saw(js, checks.QUIC, checks.QUIC)


def test_js_dialer_reports_failure_on_stderr() -> None:
    with JsPeer("tls", "yamux") as js:
        r = run_js_result("ping", js.maddr, "--security", "plaintext", timeout=30)
        assert r.returncode != 0
        assert r.stdout == ""
        assert r.stderr.startswith("error: ping:"), r.describe()


def test_crashed_listener_fails_the_test() -> None:
    peer = JsPeer("noise", "yamux")
    with pytest.raises(pytest.fail.Exception, match="exited by itself"):
        with peer:
            assert peer.proc is not None
            os.kill(peer.proc.pid, signal.SIGKILL)
            peer.proc.wait(timeout=5)
