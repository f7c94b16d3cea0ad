"""p2pkit <-> js-libp2p: every {noise, tls} x {yamux, mplex} pair, both directions.

Each class runs ping, echo with half-close and 100 concurrent streams both ways,
and a 64 MiB transfer once per direction. The noise + yamux cell of the matrix
is TestNoiseYamux in test_noise.py (same operations plus more). Then negotiation
down: a peer preferring noise,tls and yamux,mplex against one that only has
tls + mplex, both ways.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from . import checks
from .harness import JsPeer, P2pkitListener, run_js, run_p2pkit
from .suite import BigTransfers, InteropSuite

pytestmark = pytest.mark.interop


class TestMatrixNoiseMplex(BigTransfers, InteropSuite):
    SECURITY = "noise"
    MUXER = "mplex"


class TestMatrixTlsYamux(BigTransfers, InteropSuite):
    SECURITY = "tls"
    MUXER = "yamux"


class TestMatrixTlsMplex(BigTransfers, InteropSuite):
    SECURITY = "tls"
    MUXER = "mplex"


@pytest.fixture(scope="module")
def js_tls_mplex_only() -> Iterator[JsPeer]:
    with JsPeer("tls", "mplex") as peer:
        yield peer


@pytest.fixture(scope="module")
def p2pkit_prefers_noise_yamux() -> Iterator[P2pkitListener]:
    with P2pkitListener("noise,tls", "yamux,mplex") as peer:
        yield peer


def test_p2pkit_dialer_negotiates_down_to_tls_mplex(js_tls_mplex_only: JsPeer) -> None:
    """p2pkit proposes noise then tls (multistream-select), js answers `na` to noise;
    the muxer comes from TLS ALPN (js offers only mplex)."""
    opts = ["--security", "noise,tls", "--muxer", "yamux,mplex"]
    r = run_p2pkit(["ping", js_tls_mplex_only.maddr, "--count", 3, *opts])
    assert len(r["rtt_ms"]) == 3
    r = run_p2pkit(["echo", js_tls_mplex_only.maddr, "--streams", 20, "--bytes", 20_000, *opts])
    assert r["ok"] is True
    checks.js_saw(js_tls_mplex_only, "tls", "mplex")


def test_js_tls_mplex_only_dials_p2pkit_preferring_noise_yamux(
    p2pkit_prefers_noise_yamux: P2pkitListener,
) -> None:
    p2p = p2pkit_prefers_noise_yamux
    r = run_js("ping", p2p.maddr, "--count", 3, "--security", "tls", "--muxer", "mplex")
    checks.negotiated(r, "tls", "mplex")
    r = run_js(
        "echo",
        p2p.maddr,
        "--streams",
        20,
        "--bytes",
        20_000,
        "--security",
        "tls",
        "--muxer",
        "mplex",
    )
    assert r["ok"] is True
    checks.negotiated(r, "tls", "mplex")
    p2p.assert_alive()


def test_js_prefers_noise_yamux_p2pkit_same(p2pkit_prefers_noise_yamux: P2pkitListener) -> None:
    """Both sides list noise,tls and yamux,mplex: the first choices win."""
    p2p = p2pkit_prefers_noise_yamux
    r = run_js("ping", p2p.maddr, "--count", 3, "--security", "noise,tls", "--muxer", "yamux,mplex")
    checks.negotiated(r, "noise", "yamux")
    p2p.assert_alive()
