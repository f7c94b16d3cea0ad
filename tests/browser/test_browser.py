"""A real browser reaches p2pkit: js-libp2p in headless Chromium dials `/ws`.

The page (app.js, bundled from pinned npm packages by build.mjs) dials the listener
over WebSocket with Noise and Yamux, pings it, echoes 1 MiB on /echo/1.0.0 and
reports; the tests assert on that report. The same page also dials a js-libp2p
listener in Node (js-listener.mjs): a control, so a failure p2pkit alone shows is
p2pkit's and one both show is the page's or the browser's. One bundle build, one
browser and one page per target for the whole module (the fixture), then plain
assertions per test.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ..interop.harness import ListenerProcess, P2pkitListener
from .page import HERE, build_bundle, chromium_binary, ensure_installed, open_pages, page_url, serve

# npm ci on a fresh checkout dominates; every step has its own, shorter bound.
pytestmark = pytest.mark.timeout(900)

WS = "/ip4/127.0.0.1/tcp/0/ws"
MiB = 1024 * 1024
PINGS = 5
PAGE_TIMEOUT = 60.0
TARGETS = ("p2pkit", "js-libp2p")


@dataclass(frozen=True)
class Report:
    """What one page reported about one listener (or why there was no page)."""

    listener_peer_id: str | None
    url: str | None
    result: dict[str, Any] | None
    failure: str | None = None


class JsWsListener(ListenerProcess):
    """`node js-listener.mjs`: js-libp2p listening on /ws in Node."""

    name = "js-libp2p /ws listener"

    def __init__(self, node: str) -> None:
        super().__init__([node, str(HERE / "js-listener.mjs"), "--listen", WS], cwd=HERE)


def start(stack: ExitStack, listener: ListenerProcess) -> ListenerProcess | str:
    """Enter `listener` on `stack`, or return why it did not start.

    A listener that cannot start fails the tests of its own target only: the
    other target's page still runs.
    """
    try:
        return stack.enter_context(listener)
    except pytest.fail.Exception as exc:
        return str(exc)


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Report]]:
    node = ensure_installed()
    chromium = chromium_binary()
    site = build_bundle(node, tmp_path_factory.mktemp("site"))
    profile: Path = tmp_path_factory.mktemp("chromium-profile")
    out: dict[str, Report] = {}
    with ExitStack() as stack:
        base, requests = stack.enter_context(serve(site))
        started = {
            "p2pkit": start(stack, P2pkitListener("noise", "yamux", listen=WS)),
            "js-libp2p": start(stack, JsWsListener(node)),
        }
        listeners = {t: li for t, li in started.items() if isinstance(li, ListenerProcess)}
        for t, li in started.items():
            if isinstance(li, str):
                out[t] = Report(None, None, None, f"the {t} listener did not start: {li}")
        urls = [page_url(base, li.maddr, MiB, PINGS) for li in listeners.values()]
        pages = open_pages(node, chromium, profile, urls, timeout=PAGE_TIMEOUT) if urls else []
        print("HTTP requests:", *requests, sep="\n  ")
        for (t, li), page in zip(listeners.items(), pages, strict=True):
            li.assert_alive()
            out[t] = Report(li.peer_id, page["url"], page["result"], page.get("error"))
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
    assert "/ws" in result["remote_addr"].split("/p2p/")[0]
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
