"""A real browser reaches p2pkit: js-libp2p in headless Chromium dials `/ws` and `/tls/ws`.

The page (app.js, bundled from pinned npm packages by build.mjs) dials the listener
over WebSocket with Noise and Yamux, pings it, echoes 1 MiB on /echo/1.0.0 and
reports; the tests assert on that report. Targets:

- ``p2pkit-ws``: `p2pkit listen` on `/ws`, the case a page served over http uses;
- ``p2pkit-tls-ws``: the same process on `/tls/ws` (`wss://`, what a page served over
  https must use), with a certificate from a throwaway CA; Chromium is told to trust
  that certificate's key (--ignore-certificate-errors-spki-list), nothing else;
- ``js-libp2p-ws``: a js-libp2p node on `/ws` in Node (js-listener.mjs), the control:
  a failure only p2pkit shows is p2pkit's, one all show is the page's or the browser's.

One bundle build, one browser and one page per target for the whole module (the
fixture), then plain assertions per test.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ..interop.harness import ListenerProcess, P2pkitListener
from ..websocket.certs import CertFiles, make_certs
from .page import HERE, build_bundle, chromium_binary, ensure_installed, open_pages, page_url, serve

# npm ci on a fresh checkout dominates; every step has its own, shorter bound.
pytestmark = pytest.mark.timeout(900)

WS = "/ip4/127.0.0.1/tcp/0/ws"
TLS_WS = "/ip4/127.0.0.1/tcp/0/tls/ws"
MiB = 1024 * 1024
PINGS = 5
PAGE_TIMEOUT = 60.0
TARGETS = ("p2pkit-ws", "p2pkit-tls-ws", "js-libp2p-ws")


@dataclass(frozen=True)
class Report:
    """What one page reported about one listen address (or why there was no page)."""

    listener_peer_id: str | None
    maddr: str | None
    url: str | None
    result: dict[str, Any] | None
    failure: str | None = None


class JsWsListener(ListenerProcess):
    """`node js-listener.mjs`: js-libp2p listening on /ws in Node."""

    name = "js-libp2p /ws listener"

    def __init__(self, node: str) -> None:
        super().__init__([node, str(HERE / "js-listener.mjs"), "--listen", WS], cwd=HERE)


def p2pkit_listener(certs: CertFiles, config: Path) -> P2pkitListener:
    """`p2pkit listen` on /ws and /tls/ws (noise + yamux), the certificate from `config`."""
    config.write_text(
        "[p2pkit.plugins.websocket]\n"
        f"cert_file = {str(certs.cert_file)!r}\n"
        f"key_file = {str(certs.key_file)!r}\n"
    )
    return P2pkitListener("noise", "yamux", "--listen", TLS_WS, "--config", str(config), listen=WS)


def spki_sha256(cert_file: Path) -> str:
    """base64(SHA-256(SubjectPublicKeyInfo)): how Chromium's flag names a trusted key."""
    cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


def start(stack: ExitStack, listener: ListenerProcess) -> ListenerProcess | str:
    """Enter `listener` on `stack`, or return why it did not start.

    A listener that cannot start fails the tests of its own targets only: the
    other targets' pages still run.
    """
    try:
        return stack.enter_context(listener)
    except pytest.fail.Exception as exc:
        return str(exc)


def address(listener: ListenerProcess, kind: str) -> str | None:
    """The listener's first address of `kind` ("ws": plain, "tls/ws": over TLS)."""
    for maddr in listener.addrs:
        transport = maddr.split("/p2p/")[0]
        if transport.endswith("/tls/ws") == (kind == "tls/ws") and transport.endswith("/ws"):
            return maddr
    return None


def resolve(
    planned: dict[str, tuple[ListenerProcess | str, str]],
) -> tuple[dict[str, tuple[ListenerProcess, str]], dict[str, Report]]:
    """Per target, (listener, multiaddr) to open a page for, or a Report saying why not."""
    pages: dict[str, tuple[ListenerProcess, str]] = {}
    failures: dict[str, Report] = {}
    for target, (listener, kind) in planned.items():
        if isinstance(listener, str):
            why = f"the listener did not start: {listener}"
        elif (maddr := address(listener, kind)) is None:
            why = f"no {kind} address in {listener.addrs}"
        else:
            pages[target] = (listener, maddr)
            continue
        failures[target] = Report(None, None, None, None, why)
    return pages, failures


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Report]]:
    node = ensure_installed()
    chromium = chromium_binary()
    site = build_bundle(node, tmp_path_factory.mktemp("site"))
    certs = make_certs(tmp_path_factory.mktemp("certs"))
    profile: Path = tmp_path_factory.mktemp("chromium-profile")
    out: dict[str, Report] = {}
    with ExitStack() as stack:
        base, requests = stack.enter_context(serve(site))
        py = start(stack, p2pkit_listener(certs, tmp_path_factory.mktemp("p2pkit") / "p2pkit.toml"))
        js = start(stack, JsWsListener(node))
        planned = {
            "p2pkit-ws": (py, "ws"),
            "p2pkit-tls-ws": (py, "tls/ws"),
            "js-libp2p-ws": (js, "ws"),
        }
        pages, failures = resolve(planned)
        out.update(failures)
        urls = [page_url(base, maddr, MiB, PINGS) for _, maddr in pages.values()]
        reported = (
            open_pages(
                node, chromium, profile, urls, PAGE_TIMEOUT, trust_spki=spki_sha256(certs.cert_file)
            )
            if urls
            else []
        )
        print("HTTP requests:", *requests, sep="\n  ")
        for (target, (listener, maddr)), page in zip(pages.items(), reported, strict=True):
            listener.assert_alive()
            out[target] = Report(
                listener.peer_id, maddr, page["url"], page["result"], page.get("error")
            )
    yield out


def result_of(reports: dict[str, Report], target: str) -> dict[str, Any]:
    """The page's report for `target`; fails with what went wrong unless it is ok."""
    report = reports[target]
    result = report.result
    if result is None:
        pytest.fail(f"no report from the page for {target}: {report.failure}", pytrace=False)
    assert result.get("ok") is True, (
        f"the page failed against {target} at {result.get('step')!r}: {result.get('error')}\n"
        f"{result.get('stack')}"
    )
    return result


@pytest.mark.parametrize("target", TARGETS)
def test_browser_dials_over_websocket(reports: dict[str, Report], target: str) -> None:
    result = result_of(reports, target)
    assert "HeadlessChrome/" in result["user_agent"]
    assert result["remote_peer"] == reports[target].listener_peer_id
    assert result["remote_addr"] == reports[target].maddr
    assert result["encryption"] == "/noise"
    assert result["multiplexer"] == "/yamux/1.0.0"
    assert result["connect_ms"] > 0


@pytest.mark.parametrize("target", TARGETS)
def test_browser_pings(reports: dict[str, Report], target: str) -> None:
    result = result_of(reports, target)
    rtts = result["ping_rtt_ms"]
    assert len(rtts) == PINGS
    assert all(rtt > 0 for rtt in rtts), rtts
    # @libp2p/ping's own service times with Date.now(): whole ms, 0 on a fast loopback.
    assert isinstance(result["ping_service_rtt_ms"], int | float)
    assert result["ping_service_rtt_ms"] >= 0


@pytest.mark.parametrize("target", TARGETS)
def test_browser_echoes_1mib(reports: dict[str, Report], target: str) -> None:
    echo = result_of(reports, target)["echo"]
    assert echo["sent_bytes"] == MiB
    assert echo["received_bytes"] == MiB
    assert len(echo["sent_sha256"]) == 64
    assert echo["received_sha256"] == echo["sent_sha256"]
