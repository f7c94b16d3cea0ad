"""Identify extras with js-libp2p, both ways: signed peer records and identify push.

``test_identify.py`` covers the identify fields in both directions through the CLIs;
this file drives an in-process p2pkit host (it must change its protocols and
addresses while connected, which no CLI command does) against the js listener:

* js verifies our signed peer record, and we verify js's (certified addresses);
* we never push to a peer that did not announce ``/ipfs/id/push/1.0.0`` (the js peer
  runs no identify-push service unless started with ``--identify-push``);
* with ``--identify-push``, pushes go both ways: js's protocol change reaches us and
  ours reaches js.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from p2pkit.builder import HostBuilder
from p2pkit.events import PeerIdentified

from .harness import JsPeer, strip_p2p

pytestmark = pytest.mark.interop


@pytest.fixture(scope="module")
def js() -> Iterator[JsPeer]:
    with JsPeer("noise", "yamux") as peer:
        yield peer


async def _js_identify(
    js: JsPeer, peer_id: str, predicate: Callable[[dict[str, Any]], bool], timeout: float = 10.0
) -> dict[str, Any]:
    """Poll (without blocking our event loop) for a js IDENTIFY line about us."""
    async with asyncio.timeout(timeout):
        while True:
            for event in js.events("IDENTIFY"):
                if event["peer_id"] == peer_id and predicate(event):
                    return event
            await asyncio.sleep(0.05)


async def test_signed_peer_records_both_ways_and_no_push_without_support(js: JsPeer) -> None:
    host = (
        HostBuilder()
        .security("noise")
        .muxer("yamux")
        .transport("tcp")
        .listen("/ip4/127.0.0.1/tcp/0")
        .build()
    )
    async with host:
        me = str(host.peer_id)
        sub = host.events.subscribe(PeerIdentified)
        conn = await host.connect(js.maddr)
        js_id = conn.peer
        # We identify js: its signed peer record verifies and certifies its address.
        async with asyncio.timeout(10):
            while not isinstance(ev := await sub.get(), PeerIdentified) or ev.peer != js_id:
                pass
        certified = host.peerstore.get_metadata(js_id, "CertifiedAddrs")
        assert isinstance(certified, list) and strip_p2p(js.maddr) in certified
        # js identifies us on connect: it verified our signed peer record.
        first = await _js_identify(js, me, lambda e: True)
        assert first["signed_peer_record"] is True
        assert first["agent_version"] == "p2pkit/0.1.0"
        assert "/ipfs/id/push/1.0.0" in first["protocols"]
        assert strip_p2p(str(host.listen_addrs[0])) in [strip_p2p(a) for a in first["listen_addrs"]]

        # The pinned js peer runs no identify-push service (it does not announce
        # /ipfs/id/push/1.0.0), so a local change must not try to push to it.
        assert "/ipfs/id/push/1.0.0" not in ev.protocols
        ident = host.identify

        async def handler(stream: Any) -> None:
            await stream.close()

        host.set_stream_handler("/p2pkit/push-test/1.0.0", handler)
        assert await ident.push() == 0
        assert ident.pushes_sent == 0
        # ... and the connection is unharmed.
        assert conn.is_closed is False
        sub.close()
    js.assert_alive()


async def test_identify_push_both_ways_with_js() -> None:
    """js runs identify-push (``--identify-push``): it accepts our pushes and pushes its own
    protocol change to us."""
    host = (
        HostBuilder()
        .security("noise")
        .muxer("yamux")
        .transport("tcp")
        .listen("/ip4/127.0.0.1/tcp/0")
        .build()
    )
    with JsPeer("noise", "yamux", "--identify-push") as js:
        async with host:
            me = str(host.peer_id)
            sub = host.events.subscribe(PeerIdentified)
            conn = await host.connect(js.maddr)
            js_id = conn.peer
            # js announces push, and after identifying us it adds a protocol: its push
            # reaches us as a second PeerIdentified carrying the new list.
            async with asyncio.timeout(15):
                while True:
                    ev = await sub.get()
                    if isinstance(ev, PeerIdentified) and ev.peer == js_id:
                        if "/js/push-test/1.0.0" in ev.protocols:
                            break
                        assert "/ipfs/id/push/1.0.0" in ev.protocols
            assert "/js/push-test/1.0.0" in host.peerstore.protocols(js_id)
            await _js_identify(js, me, lambda e: True)

            # Our change is pushed to js, which reports it as a new identify result.
            async def handler(stream: Any) -> None:
                await stream.close()

            host.set_stream_handler("/p2pkit/push-test/1.0.0", handler)
            pushed = await _js_identify(
                js, me, lambda e: "/p2pkit/push-test/1.0.0" in e["protocols"]
            )
            assert pushed["agent_version"] == "p2pkit/0.1.0"
            assert conn.is_closed is False
            sub.close()
        js.assert_alive()
