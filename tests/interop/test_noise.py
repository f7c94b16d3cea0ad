"""p2pkit <-> js-libp2p over TCP + Noise + yamux, both directions.

Besides the standard operations: Noise *without* early muxer negotiation (js
offers an empty muxer list in its handshake payload, the muxer is then chosen
by multistream-select), differently ordered muxer lists, and js's optimistic
("lazy") protocol selection, where js sends the protocol proposal and the first
data in one write without waiting for the answer.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from . import checks
from .harness import JsPeer, P2pkitListener, run_js, run_p2pkit
from .suite import BigTransfers, ExtraOps, InteropSuite, Listeners

pytestmark = pytest.mark.interop


class TestNoiseYamux(BigTransfers, ExtraOps, InteropSuite):
    SECURITY = "noise"
    MUXER = "yamux"

    def test_js_lazy_select_echo_p2pkit(self, p2p: P2pkitListener) -> None:
        """js writes `/multistream/1.0.0 + /echo/1.0.0 + data` before any answer."""
        checks.js_echo(p2p, self.SECURITY, self.MUXER, 4, 50_000, "--lazy-select")

    def test_js_lazy_select_ping_p2pkit(self, p2p: P2pkitListener) -> None:
        checks.js_ping(p2p, self.SECURITY, self.MUXER, "--lazy-select")


class TestNoiseWithoutEarlyMuxer(Listeners):
    """js offers no muxer in the Noise handshake (`--no-early-muxer`): the muxer is
    negotiated with multistream-select after the handshake, in both roles."""

    SECURITY = "noise"
    MUXER = "yamux"
    JS_LISTEN_EXTRA = ("--no-early-muxer",)

    def test_p2pkit_pings_js_without_early_muxer(self, js: JsPeer) -> None:
        checks.p2pkit_ping(js, self.SECURITY, self.MUXER)

    def test_p2pkit_echo_js_without_early_muxer(self, js: JsPeer) -> None:
        checks.p2pkit_echo(js, self.SECURITY, self.MUXER, streams=100, nbytes=4096)

    def test_js_dialer_without_early_muxer(self, p2p: P2pkitListener) -> None:
        r = run_js(
            "echo", p2p.maddr, "--streams", 4, "--bytes", 10_000,
            "--security", "noise", "--muxer", "yamux", "--no-early-muxer",
        )  # fmt: skip
        assert r["ok"] is True
        checks.negotiated(r, "noise", "yamux")
        p2p.assert_alive()

    def test_js_dialer_without_early_muxer_mplex(self, p2p: P2pkitListener) -> None:
        """p2pkit listener offers yamux only; js dialer without early muxer offers mplex
        first then yamux: multistream-select must settle on yamux."""
        r = run_js(
            "ping", p2p.maddr, "--count", 3,
            "--security", "noise", "--muxer", "mplex,yamux", "--no-early-muxer",
        )  # fmt: skip
        checks.negotiated(r, "noise", "yamux")
        p2p.assert_alive()


@pytest.fixture(scope="module")
def js_mplex_first() -> Iterator[JsPeer]:
    with JsPeer("noise", "mplex,yamux") as peer:
        yield peer


def test_initiator_muxer_order_wins(js_mplex_first: JsPeer) -> None:
    """js listener prefers [mplex, yamux], p2pkit dialer [yamux, mplex]: inlined muxer
    negotiation picks the initiator's first common muxer (yamux) on both sides."""
    r = run_p2pkit(
        ["echo", js_mplex_first.maddr, "--streams", 4, "--bytes", 10_000,
         "--security", "noise", "--muxer", "yamux,mplex"]
    )  # fmt: skip
    assert r["ok"] is True
    checks.js_saw(js_mplex_first, "noise", "yamux")


class TestNoiseStockJs(Listeners):
    """A js peer with every stock limit (`--stock-limits`): what p2pkit meets in the
    wild. Kept within those limits (32 inbound streams per protocol, yamux only:
    stock mplex aborts a connection on more than 5 new streams per second)."""

    SECURITY = "noise"
    MUXER = "yamux"
    JS_LISTEN_EXTRA = ("--stock-limits",)

    def test_p2pkit_pings_stock_js(self, js: JsPeer) -> None:
        checks.p2pkit_ping(js, self.SECURITY, self.MUXER)

    def test_p2pkit_echo_20_streams_stock_js(self, js: JsPeer) -> None:
        checks.p2pkit_echo(js, self.SECURITY, self.MUXER, streams=20, nbytes=20_000)

    def test_stock_js_echo_20_streams_p2pkit(self, p2p: P2pkitListener) -> None:
        checks.js_echo(p2p, self.SECURITY, self.MUXER, 20, 20_000, "--stock-limits")


@pytest.mark.parametrize("direction", ["p2pkit-dials-js", "js-dials-p2pkit"])
def test_ipv6_loopback(direction: str) -> None:
    """TCP over ::1, both ways (multiaddrs /ip6/::1/tcp/N)."""
    if direction == "p2pkit-dials-js":
        with JsPeer("noise", "yamux", listen="/ip6/::1/tcp/0") as js:
            assert js.maddr.startswith("/ip6/::1/tcp/")
            checks.p2pkit_echo(js, "noise", "yamux", streams=4, nbytes=20_000)
    else:
        with P2pkitListener("noise", "yamux", listen="/ip6/::1/tcp/0") as p2p:
            assert p2p.maddr.startswith("/ip6/::1/tcp/")
            checks.js_echo(p2p, "noise", "yamux", 4, 20_000)
