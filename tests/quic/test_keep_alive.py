"""Keep-alive: an idle QUIC connection outlives the idle timeout when keep-alive is on.

aioquic's timer for an idle connection is its idle deadline, so a keep-alive checked
only when that timer fires comes too late: the connection ends instead.  The PING must
be scheduled on its own, within half the negotiated idle timeout (js-libp2p offers
10 s, docs/interop.md)."""

from __future__ import annotations

import asyncio

from p2pkit.builder import HostBuilder
from p2pkit.host import Host

LISTEN = "/ip4/127.0.0.1/udp/0/quic-v1"


def _host(listen: bool, **quic: float) -> Host:
    b = HostBuilder().transport("quic", **quic)
    return (b.listen(LISTEN) if listen else b).build()


async def test_idle_connection_kept_alive_past_the_idle_timeout() -> None:
    # keep_alive (5 s) longer than the idle timeout (2 s): half the timeout wins
    a = _host(True, idle_timeout=2.0, keep_alive=5.0)
    b = _host(False, idle_timeout=2.0, keep_alive=5.0)
    async with a, b:
        conn = await b.connect(a.addrs_with_peer_id[0])
        await asyncio.sleep(5.0)  # 2.5 idle timeouts with no application traffic
        assert not conn.is_closed
        assert b.connections() == [conn]


async def test_idle_connection_ends_without_keep_alive() -> None:
    a = _host(True, idle_timeout=1.0, keep_alive=0.0)
    b = _host(False, idle_timeout=1.0, keep_alive=0.0)
    async with a, b:
        conn = await b.connect(a.addrs_with_peer_id[0])
        async with asyncio.timeout(10):
            while not conn.is_closed:
                await asyncio.sleep(0.05)
        assert b.connections() == []
