"""Dialer: ranking, backoff, happy-eyeballs race with dead addresses, aggregate errors,
timeouts and simultaneous dials -- over real loopback sockets."""

from __future__ import annotations

import asyncio

from multiaddr import Multiaddr

from p2pkit.dialer import DialBackoff, rank_addrs
from p2pkit.protocols.ping import PROTOCOL_ID as PING
from p2pkit.protocols.ping import ping

V4 = [Multiaddr(f"/ip4/10.0.0.{i}/tcp/1") for i in range(3)]
V6 = [Multiaddr(f"/ip6/fd00::{i}/tcp/1") for i in range(2)]
DNS = Multiaddr("/dns4/example.com/tcp/1")


def test_rank_interleaves_families():
    assert rank_addrs([*V4, DNS, *V6]) == [V6[0], V4[0], V6[1], V4[1], V4[2], DNS]
    assert rank_addrs([*V4, *V6, V4[0]], prefer_ipv6=False) == [V4[0], V6[0], V4[1], V6[1], V4[2]]


def test_backoff_grows_and_expires():
    now = [0.0]
    b = DialBackoff(5.0, 12.0, clock=lambda: now[0])
    assert b.until(None, V4[0]) is None
    b.failed(None, V4[0])
    assert b.until(None, V4[0]) == 5.0
    b.failed(None, V4[0])
    assert b.until(None, V4[0]) == 10.0
    b.failed(None, V4[0])
    assert b.until(None, V4[0]) == 12.0  # capped
    now[0] = 12.5
    assert b.until(None, V4[0]) is None
    b.failed(None, V4[1])
    b.succeeded(None, V4[1])
    assert b.until(None, V4[1]) is None


def test_backoff_forgets_stale_entries_and_is_capped():
    now = [0.0]
    b = DialBackoff(5.0, 12.0, clock=lambda: now[0], max_entries=3)
    b.failed(None, V4[0])
    b.failed(None, V4[0])
    now[0] = 10.0 + 12.0  # backoff ended 12 s (= maximum) ago: the entry is stale
    assert b.until(None, V4[0]) is None
    assert len(b) == 0  # forgotten ...
    b.failed(None, V4[0])
    assert b.until(None, V4[0]) == now[0] + 5.0  # ... so the count restarted
    # at most max_entries: the least recently failed go first
    for addr in [*V4[1:], *V6]:
        b.failed(None, addr)
    assert len(b) == 3
    assert b.until(None, V4[0]) is None
    assert b.until(None, V6[-1]) is not None
    # stale entries go before fresh ones when the cap is hit
    now[0] += 100.0
    b.failed(None, DNS)
    assert len(b) == 1 and b.until(None, DNS) is not None


async def test_simultaneous_dial_keeps_working_connectivity(make_host):
    a = await make_host()
    b = await make_host()
    for _ in range(3):
        ca, cb = await asyncio.gather(
            a.connect(b.addrs_with_peer_id[0]), b.connect(a.addrs_with_peer_id[0])
        )
        # Both dials succeed; each host keeps both connections (one per direction):
        # no connection is closed under a stream, the connection manager may trim later.
        assert ca.peer == b.peer_id and cb.peer == a.peer_id
        assert 1 <= len(a.connections(b.peer_id)) <= 2
        assert len(await ping(await a.new_stream(b.peer_id, PING), 1)) == 1
        assert len(await ping(await b.new_stream(a.peer_id, PING), 1)) == 1
        await a.disconnect(b.peer_id)
        await b.disconnect(a.peer_id)
        async with asyncio.timeout(5):
            while a.connections() or b.connections():
                await asyncio.sleep(0.01)
    assert a.swarm.rcmgr.system.empty
    assert b.swarm.rcmgr.system.empty
