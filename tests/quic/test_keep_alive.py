"""Keep-alive within half the *negotiated* idle timeout, whatever ``keep_alive`` says.

js-libp2p offers a 10 s idle timeout (docs/interop.md) and p2pkit-quic's keep_alive is
15 s: a PING sent only after ``keep_alive`` of silence would come when the connection
is already over.  (test_quic_transport.py covers keep-alive shorter than the timeout.)"""

from __future__ import annotations

import asyncio

from p2pkit.builder import HostBuilder
from p2pkit.host import Host

LISTEN = "/ip4/127.0.0.1/udp/0/quic-v1"


def _host(listen: bool, **quic: float) -> Host:
    b = HostBuilder().transport("quic", **quic)
    return (b.listen(LISTEN) if listen else b).build()


async def test_keep_alive_longer_than_the_idle_timeout_is_capped() -> None:
    # keep_alive (5 s) longer than the idle timeout (2 s): half the timeout wins
    a = _host(True, idle_timeout=2.0, keep_alive=5.0)
    b = _host(False, idle_timeout=2.0, keep_alive=5.0)
    async with a, b:
        conn = await b.connect(a.addrs_with_peer_id[0])
        await asyncio.sleep(5.0)  # 2.5 idle timeouts with no application traffic
        assert not conn.is_closed
        assert b.connections() == [conn]
