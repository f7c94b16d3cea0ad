"""Identify (/ipfs/id/1.0.0) between p2pkit and js-libp2p, both ways.

Each side reports what it learned about the other; the checks are about what
the *remote* sent: its peer id, versions, protocols, listen addresses and the
address it observed for us. Also: js identifies p2pkit on its own right after
a connection opens, and identities of every key type js supports (js 3.x has
no ECDSA identities) are verified in both directions (Ed25519, the default, is
covered by every other test).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from . import checks
from .harness import JsPeer, P2pkitListener, run_js, run_p2pkit, run_p2pkit_result, strip_p2p

pytestmark = pytest.mark.interop

LOOPBACK_TCP = "/ip4/127.0.0.1/tcp/"


@pytest.fixture(scope="module")
def js() -> Iterator[JsPeer]:
    with JsPeer("noise", "yamux") as peer:
        yield peer


@pytest.fixture(scope="module")
def p2p() -> Iterator[P2pkitListener]:
    with P2pkitListener("noise", "yamux") as peer:
        yield peer


def test_p2pkit_identifies_js(js: JsPeer) -> None:
    r = run_p2pkit(["identify", js.maddr, "--security", "noise", "--muxer", "yamux"])
    assert r["peer_id"] == js.peer_id
    assert r["agent_version"].startswith("js-libp2p/3.3.11")
    assert r["protocol_version"] == "ipfs/0.1.0"
    assert checks.STANDARD_PROTOCOLS <= set(r["protocols"])
    assert strip_p2p(js.maddr) in r["listen_addrs"]
    # js's view of our (ephemeral) address; js appends /p2p/<our id>, p2pkit may strip it
    assert r["observed_addr"].startswith(LOOPBACK_TCP)
    assert strip_p2p(r["observed_addr"]) != strip_p2p(js.maddr)
    js.assert_alive()


def test_js_identifies_p2pkit(p2p: P2pkitListener) -> None:
    r = run_js("identify", p2p.maddr, "--security", "noise", "--muxer", "yamux")
    assert r["peer_id"] == p2p.peer_id
    assert r["agent_version"]
    assert r["protocol_version"] == "ipfs/0.1.0"
    assert checks.STANDARD_PROTOCOLS <= set(r["protocols"])
    assert strip_p2p(p2p.maddr) in [strip_p2p(a) for a in r["listen_addrs"]]
    assert r["observed_addr"] is not None
    assert r["observed_addr"].startswith(LOOPBACK_TCP)
    assert r["public_key_type"] == "Ed25519"
    p2p.assert_alive()


def test_js_identifies_p2pkit_dialer_on_connect(js: JsPeer) -> None:
    """js runs identify on every new connection: p2pkit must serve it as the dialer too."""
    run_p2pkit(["ping", js.maddr, "--count", 50, "--security", "noise", "--muxer", "yamux"])
    seen = js.wait_event("IDENTIFY", timeout=10)
    conns = {e["remote_peer"] for e in js.events("CONNECTION")}
    ours = [e for e in seen if e["peer_id"] in conns]
    assert ours, f"no IDENTIFY result for a p2pkit dialer: {seen}"
    info = ours[-1]
    assert info["agent_version"]
    # a dialing CLI command serves ping and identify (echo/perf only `listen` promises)
    assert {"/ipfs/ping/1.0.0", "/ipfs/id/1.0.0"} <= set(info["protocols"])
    assert info["observed_addr"] is not None
    assert strip_p2p(info["observed_addr"]) == strip_p2p(js.maddr)
    js.assert_alive()


@pytest.mark.parametrize("key_type", ["secp256k1", "rsa"])
def test_p2pkit_verifies_js_key_types(key_type: str) -> None:
    """Noise handshake signature + identify public key of a js identity of each type."""
    with JsPeer("noise", "yamux", "--key-type", key_type) as peer:
        r = run_p2pkit(["identify", peer.maddr, "--security", "noise", "--muxer", "yamux"])
        assert r["peer_id"] == peer.peer_id


@pytest.mark.parametrize("key_type", ["secp256k1", "rsa"])
def test_js_verifies_p2pkit_key_types(key_type: str, tmp_path: Path) -> None:
    key = tmp_path / f"{key_type}.key"
    gen = run_p2pkit_result(["id", "--key-type", key_type, "--out", key])
    assert gen.returncode == 0, gen.describe()
    with P2pkitListener("noise", "yamux", "--identity", str(key)) as p2p:
        r = run_js("identify", p2p.maddr, "--security", "noise", "--muxer", "yamux")
        assert r["peer_id"] == p2p.peer_id
        assert (
            r["public_key_type"]
            == {"ed25519": "Ed25519", "secp256k1": "secp256k1", "rsa": "RSA"}[key_type]
        )
