"""p2pkit <-> py-libp2p 0.8.1: a third implementation on the wire, both directions.

py-libp2p (from PyPI) runs in a venv of its own (``benchmarks/.venv-pylibp2p``, made on
first use by ``benchmarks/_pylibp2p.py`` in about half a minute): it pulls in trio and a
large dependency tree p2pkit must never share.  Its peer script is the one
``benchmarks/compare.py`` drives (``benchmarks/_pylibp2p_peer.py``: listen, ping, perf).

Every security protocol x muxer pair py-libp2p offers: TCP + {noise, tls, plaintext} x
{yamux, mplex}, and over /ws (py-libp2p's WebSocket transport) noise + yamux and
tls + mplex.  Each way: pings on one stream, then perf (/perf/1.0.0) moving 2 MB up
and 2 MB down, byte counts checked on the server side (the listener prints a ``PERF``
line with the bytes it received).  Without py-libp2p the tests are skipped locally and
fail when CI=true, as the js ones do.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from .checks import assert_served
from .harness import ListenerProcess, P2pkitListener, in_ci, run, run_p2pkit

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
STACKS = [(s, m) for s in ("noise", "tls", "plaintext") for m in ("yamux", "mplex")]
NBYTES = 2_000_000

# The first test also sets up py-libp2p's venv (pip, about half a minute here).
pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def pylibp2p() -> Iterator[list[str]]:
    """argv prefix of the py-libp2p peer (venv python + peer script)."""
    sys.path.insert(0, str(BENCHMARKS))
    try:
        setup = importlib.import_module("_pylibp2p")
    finally:
        sys.path.remove(str(BENCHMARKS))
    impl, _version, note = setup.ensure_pylibp2p()
    if impl is None:
        if in_ci():
            pytest.fail(f"py-libp2p is needed in CI: {note}", pytrace=False)
        pytest.skip(note)
    yield list(impl.base)


class PyListener(ListenerProcess):
    name = "py-libp2p listener"


def _opts(security: str, muxer: str) -> list[str]:
    return ["--security", security, "--muxer", muxer]


@pytest.mark.parametrize(("security", "muxer"), STACKS)
def test_p2pkit_dials_pylibp2p(pylibp2p: list[str], security: str, muxer: str) -> None:
    with PyListener([*pylibp2p, "listen", *_opts(security, muxer)], cwd=BENCHMARKS) as py:
        r = run_p2pkit(["ping", py.maddr, "--count", 3, *_opts(security, muxer)])
        assert len(r["rtt_ms"]) == 3
        r = run_p2pkit(
            ["perf", py.maddr, "--upload", NBYTES, "--download", NBYTES, *_opts(security, muxer)]
        )
        assert_served(py, 0, NBYTES, NBYTES)
        assert (r["upload_bytes"], r["download_bytes"]) == (NBYTES, NBYTES)


@pytest.mark.parametrize(("security", "muxer"), STACKS)
def test_pylibp2p_dials_p2pkit(pylibp2p: list[str], security: str, muxer: str) -> None:
    with P2pkitListener(security, muxer) as p2p:
        r = run(
            [*pylibp2p, "ping", p2p.maddr, "--count", 3, *_opts(security, muxer)],
            timeout=60,
            cwd=BENCHMARKS,
        ).json()
        assert len(r["rtt_ms"]) == 3
        r = run(
            [
                *pylibp2p,
                *["perf", p2p.maddr, "--upload", str(NBYTES), "--download", str(NBYTES)],
                *_opts(security, muxer),
            ],
            timeout=60,
            cwd=BENCHMARKS,
        ).json()
        assert_served(p2p, 0, NBYTES, NBYTES)
        assert (r["upload_bytes"], r["download_bytes"]) == (NBYTES, NBYTES)
        p2p.assert_alive()


# -- over /ws: py-libp2p's WebSocket transport (trio-websocket) against p2pkit-websocket

WS = "/ip4/127.0.0.1/tcp/0/ws"
WS_STACKS = [("noise", "yamux"), ("tls", "mplex")]


@pytest.mark.parametrize(("security", "muxer"), WS_STACKS)
def test_p2pkit_dials_pylibp2p_over_ws(pylibp2p: list[str], security: str, muxer: str) -> None:
    argv = [*pylibp2p, "listen", "--listen", WS, *_opts(security, muxer)]
    with PyListener(argv, cwd=BENCHMARKS) as py:
        assert "/ws/p2p/" in py.maddr
        r = run_p2pkit(["ping", py.maddr, "--count", 3, *_opts(security, muxer)])
        assert len(r["rtt_ms"]) == 3
        r = run_p2pkit(
            ["perf", py.maddr, "--upload", NBYTES, "--download", NBYTES, *_opts(security, muxer)]
        )
        assert_served(py, 0, NBYTES, NBYTES)
        assert (r["upload_bytes"], r["download_bytes"]) == (NBYTES, NBYTES)


@pytest.mark.parametrize(("security", "muxer"), WS_STACKS)
def test_pylibp2p_dials_p2pkit_over_ws(pylibp2p: list[str], security: str, muxer: str) -> None:
    with P2pkitListener(security, muxer, listen=WS) as p2p:
        assert "/ws/p2p/" in p2p.maddr
        r = run(
            [*pylibp2p, "ping", p2p.maddr, "--count", 3, *_opts(security, muxer)],
            timeout=60,
            cwd=BENCHMARKS,
        ).json()
        assert len(r["rtt_ms"]) == 3
        r = run(
            [
                *pylibp2p,
                *["perf", p2p.maddr, "--upload", str(NBYTES), "--download", str(NBYTES)],
                *_opts(security, muxer),
            ],
            timeout=60,
            cwd=BENCHMARKS,
        ).json()
        assert_served(p2p, 0, NBYTES, NBYTES)
        assert (r["upload_bytes"], r["download_bytes"]) == (NBYTES, NBYTES)
        p2p.assert_alive()
