"""p2pkit <-> js-libp2p (@libp2p/websockets) over /ws and /tls/ws, both directions.

Per address kind: ping, echo with half-close on 1 and 20 streams, 64 MiB through one
stream each way checked by sha256, perf 64 MiB each way (byte counts checked on the
server), identify.  For /tls/ws both listeners serve a certificate signed by a test CA
(tests/websocket/certs.py) that both dialers are told to trust: Node through
``NODE_EXTRA_CA_CERTS``, p2pkit (Python's ssl default paths) through ``SSL_CERT_FILE``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from tests.websocket.certs import CertFiles, make_certs

from . import checks
from .harness import JsPeer, P2pkitListener, run_js, run_p2pkit
from .suite import BigTransfers

pytestmark = pytest.mark.interop

STREAMS = 20


@pytest.fixture(scope="module")
def ws_certs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CertFiles]:
    """The test CA, trusted by every dialer process started while this module runs."""
    certs = make_certs(Path(tmp_path_factory.mktemp("ws-interop-certs")))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NODE_EXTRA_CA_CERTS", str(certs.ca_file))
        mp.setenv("SSL_CERT_FILE", str(certs.ca_file))
        yield certs


class WsInterop(BigTransfers):
    LISTEN: ClassVar[str]
    SECURITY = "noise"
    MUXER = "yamux"

    @pytest.fixture(scope="class")
    @classmethod
    def js(cls, ws_certs: CertFiles) -> Iterator[JsPeer]:  # type: ignore[override]
        extra = ("--cert", str(ws_certs.cert_file), "--key", str(ws_certs.key_file))
        with JsPeer(cls.SECURITY, cls.MUXER, *extra, listen=cls.LISTEN) as peer:
            assert "/ws/p2p/" in peer.maddr
            yield peer

    @pytest.fixture(scope="class")
    @classmethod
    def p2p(  # type: ignore[override]
        cls, ws_certs: CertFiles, tmp_path_factory: pytest.TempPathFactory
    ) -> Iterator[P2pkitListener]:
        config = tmp_path_factory.mktemp("ws-p2pkit") / "p2pkit.toml"
        config.write_text(
            "[p2pkit.plugins.websocket]\n"
            f'cert_file = "{ws_certs.cert_file}"\nkey_file = "{ws_certs.key_file}"\n'
        )
        with P2pkitListener(
            cls.SECURITY, cls.MUXER, "--config", str(config), listen=cls.LISTEN
        ) as peer:
            assert "/ws/p2p/" in peer.maddr
            yield peer

    # -- p2pkit dials js

    def test_p2pkit_pings_js(self, js: JsPeer) -> None:
        checks.p2pkit_ping(js, self.SECURITY, self.MUXER)

    def test_p2pkit_echo_half_close_js(self, js: JsPeer) -> None:
        checks.p2pkit_echo(js, self.SECURITY, self.MUXER, streams=1, nbytes=10_000)

    def test_p2pkit_echo_20_streams_js(self, js: JsPeer) -> None:
        checks.p2pkit_echo(js, self.SECURITY, self.MUXER, streams=STREAMS, nbytes=100_000)

    @pytest.mark.timeout(checks.BIG_TIMEOUT + 30)
    def test_p2pkit_perf_64mib_js(self, js: JsPeer) -> None:
        checks.p2pkit_perf(js, self.SECURITY, self.MUXER, up=checks.BIG, down=checks.BIG)

    def test_p2pkit_identifies_js(self, js: JsPeer) -> None:
        r = run_p2pkit(["identify", js.maddr, "--security", self.SECURITY, "--muxer", self.MUXER])
        assert r["peer_id"] == js.peer_id
        assert r["agent_version"].startswith("js-libp2p/")
        assert any(a.endswith("/ws") for a in r["listen_addrs"]), r
        assert checks.STANDARD_PROTOCOLS <= set(r["protocols"])

    # -- js dials p2pkit

    def test_js_pings_p2pkit(self, p2p: P2pkitListener) -> None:
        checks.js_ping(p2p, self.SECURITY, self.MUXER)

    def test_js_echo_half_close_p2pkit(self, p2p: P2pkitListener) -> None:
        checks.js_echo(p2p, self.SECURITY, self.MUXER, 1, 10_000)

    def test_js_echo_20_streams_p2pkit(self, p2p: P2pkitListener) -> None:
        checks.js_echo(p2p, self.SECURITY, self.MUXER, STREAMS, 100_000)

    @pytest.mark.timeout(checks.BIG_TIMEOUT + 30)
    def test_js_perf_64mib_p2pkit(self, p2p: P2pkitListener) -> None:
        checks.js_perf(p2p, self.SECURITY, self.MUXER, up=checks.BIG, down=checks.BIG)

    def test_js_identifies_p2pkit(self, p2p: P2pkitListener) -> None:
        r = run_js("identify", p2p.maddr, "--security", self.SECURITY, "--muxer", self.MUXER)
        assert r["peer_id"] == p2p.peer_id
        assert checks.STANDARD_PROTOCOLS <= set(r["protocols"])
        assert any(a.split("/p2p/")[0].endswith("/ws") for a in r["listen_addrs"]), r
        assert r["observed_addr"] is not None and "/ws" in r["observed_addr"]
        p2p.assert_alive()


class TestWsNoiseYamux(WsInterop):
    LISTEN = "/ip4/127.0.0.1/tcp/0/ws"


class TestTlsWsNoiseYamux(WsInterop):
    LISTEN = "/ip4/127.0.0.1/tcp/0/tls/ws"
