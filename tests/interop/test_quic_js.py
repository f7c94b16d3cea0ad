"""p2pkit <-> js-libp2p over QUIC (`/quic-v1`, js: @chainsafe/libp2p-quic), both directions.

QUIC brings TLS 1.3 (ALPN `libp2p`, the libp2p certificate extension) and its own
streams, so neither side negotiates a security protocol or a muxer: js reports such a
connection as encryption "native", multiplexer "quic", which `checks.js_saw` and
`checks.negotiated` assert on every operation (a test that silently fell back to TCP
would fail there).

The suites of `suite.py` run unchanged over QUIC (ping, echo 10 kB with half-close,
100 concurrent echo streams, 300 kB echo, empty echo, perf 2 MB, 64 MiB echo and
transfer checked by sha256); on top: 20 concurrent echo streams with half-close, perf
64 MiB each way (byte counts checked by the server), identify with QUIC listen and
observed addresses both ways, and js's identify of a p2pkit dialer.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from . import checks
from .harness import (
    LOOPBACK_QUIC,
    JsPeer,
    P2pkitListener,
    run_js,
    run_js_result,
    run_p2pkit,
    strip_p2p,
)
from .suite import BigTransfers, ExtraOps, InteropSuite

pytestmark = pytest.mark.interop

QUIC = checks.QUIC
UDP_LOOPBACK = "/ip4/127.0.0.1/udp/"


def is_quic_addr(addr: str) -> bool:
    """`/ip4/127.0.0.1/udp/N/quic-v1[/p2p/...]`."""
    return addr.startswith(UDP_LOOPBACK) and strip_p2p(addr).endswith("/quic-v1")


class TestQuic(BigTransfers, ExtraOps, InteropSuite):
    SECURITY = QUIC
    MUXER = QUIC
    LISTEN = LOOPBACK_QUIC

    def test_listeners_announce_quic(self, js: JsPeer, p2p: P2pkitListener) -> None:
        assert is_quic_addr(js.maddr), js.addrs
        assert is_quic_addr(p2p.maddr), p2p.addrs

    def test_p2pkit_echo_20_streams_js(self, js: JsPeer) -> None:
        checks.p2pkit_echo(js, QUIC, QUIC, streams=20, nbytes=10_000)

    def test_js_echo_20_streams_p2pkit(self, p2p: P2pkitListener) -> None:
        checks.js_echo(p2p, QUIC, QUIC, 20, 10_000)

    @pytest.mark.timeout(checks.BIG_TIMEOUT + 30)
    def test_p2pkit_perf_64mib_js(self, js: JsPeer) -> None:
        checks.p2pkit_perf(js, QUIC, QUIC, up=checks.BIG, down=checks.BIG)

    @pytest.mark.timeout(checks.BIG_TIMEOUT + 30)
    def test_js_perf_64mib_p2pkit(self, p2p: P2pkitListener) -> None:
        checks.js_perf(p2p, QUIC, QUIC, up=checks.BIG, down=checks.BIG)

    # -- identify

    def test_p2pkit_identifies_js(self, js: JsPeer) -> None:
        r = run_p2pkit(["identify", js.maddr])
        assert r["peer_id"] == js.peer_id
        assert r["agent_version"].startswith("js-libp2p/3.3.11")
        assert checks.STANDARD_PROTOCOLS <= set(r["protocols"])
        assert strip_p2p(js.maddr) in [strip_p2p(a) for a in r["listen_addrs"]]
        # js's view of our address: a QUIC one (js appends /p2p/<our id>)
        assert r["observed_addr"] is not None and is_quic_addr(r["observed_addr"]), r
        checks.js_saw(js, QUIC, QUIC)

    def test_js_identifies_p2pkit(self, p2p: P2pkitListener) -> None:
        r = run_js("identify", p2p.maddr)
        checks.negotiated(r, QUIC, QUIC)
        assert r["peer_id"] == p2p.peer_id
        assert r["protocol_version"] == "ipfs/0.1.0"
        assert checks.STANDARD_PROTOCOLS <= set(r["protocols"])
        assert strip_p2p(p2p.maddr) in [strip_p2p(a) for a in r["listen_addrs"]]
        assert r["observed_addr"] is not None and is_quic_addr(r["observed_addr"]), r
        # js dials from its own client socket, not from a listener (it has none here)
        assert strip_p2p(r["observed_addr"]) != strip_p2p(p2p.maddr)
        assert r["public_key_type"] == "Ed25519"
        p2p.assert_alive()

    def test_js_identifies_p2pkit_dialer_on_connect(self, js: JsPeer) -> None:
        """js identifies every new connection: p2pkit serves identify as a QUIC dialer,
        and tells js the address it dialled (js's QUIC listen address)."""
        before = len(js.events("CONNECTION"))
        run_p2pkit(["ping", js.maddr, "--count", 50])
        me = js.wait_event("CONNECTION", count=before + 1)[before]["remote_peer"]
        info = checks.wait_identify(js, me)
        assert {"/ipfs/ping/1.0.0", "/ipfs/id/1.0.0"} <= set(info["protocols"])
        assert info["observed_addr"] is not None
        assert strip_p2p(info["observed_addr"]) == strip_p2p(js.maddr)
        checks.js_saw(js, QUIC, QUIC)


@pytest.fixture(scope="module")
def js_quic_and_tcp() -> Iterator[JsPeer]:
    """A js listener on QUIC and TCP at once (the transports follow its addresses)."""
    with JsPeer("noise", "yamux", "--listen", "/ip4/127.0.0.1/tcp/0", listen=LOOPBACK_QUIC) as js:
        yield js


def test_js_listener_on_quic_and_tcp(js_quic_and_tcp: JsPeer) -> None:
    """Each of js's addresses is served by its own transport: QUIC and TCP+Noise+Yamux."""
    js = js_quic_and_tcp
    quic = [a for a in js.addrs if is_quic_addr(a)]
    tcp = [a for a in js.addrs if "/tcp/" in a]
    assert len(quic) == 1 and len(tcp) == 1, js.addrs
    run_p2pkit(["ping", quic[0], "--count", 3])
    run_p2pkit(["ping", tcp[0], "--count", 3, "--security", "noise", "--muxer", "yamux"])
    events = js.wait_event("CONNECTION", count=2)
    seen = sorted((e["encryption"], e["multiplexer"]) for e in events)
    assert seen == [("/noise", "/yamux/1.0.0"), ("native", "quic")], seen
    js.assert_alive()


def test_js_dial_refused_by_p2pkit_fails_at_once(tmp_path) -> None:
    """A p2pkit listener whose gater refuses the dialer's address answers js's first
    Initial with CONNECTION_CLOSE (CONNECTION_REFUSED) from no state: js (quinn inside
    @chainsafe/libp2p-quic) ends its dial at once with "connection refused" instead of
    waiting for its own timeout; the listener keeps serving."""
    config = tmp_path / "deny.toml"
    config.write_text('[p2pkit.gater]\ndeny_cidrs = ["127.0.0.0/8"]\n')
    with P2pkitListener(None, None, "--config", config, listen=LOOPBACK_QUIC) as p2p:
        result = run_js_result("ping", p2p.maddr, timeout=60)
        assert result.returncode != 0, result.describe()
        assert "refused" in result.stderr + result.stdout, result.describe()
        assert result.seconds < 15, result.describe()  # js's own deadline is 55 s
        p2p.assert_alive()
