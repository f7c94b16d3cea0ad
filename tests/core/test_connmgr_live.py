"""Connection manager over real loopback hosts: tag and protection changes act on
connected peers, and the background check trims at its first opportunity."""

from __future__ import annotations

import asyncio

from p2pkit.config import HostBuilder
from p2pkit.connmgr import BasicConnectionManager
from p2pkit.host import Host


async def _wait_for(predicate, timeout: float = 15.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


def _server(**options: float) -> Host:
    return (
        HostBuilder()
        .security("plaintext")
        .muxer("yamux")
        .transport("tcp")
        .listen("/ip4/127.0.0.1/tcp/0")
        .connection_manager(**options)
        .build()
    )


def _peers(server: Host) -> set:
    return {c.peer for c in server.connections()}


async def test_untag_and_unprotect_act_on_connected_peers(make_host):
    """Tags and protections set before or after connecting, removed while connected."""
    server = _server(low_water=1, high_water=100, grace_period=0.0, silence_period=0.0)
    async with server:
        cm = server.connmgr
        assert isinstance(cm, BasicConnectionManager)
        a, b, c, d = [await make_host(listen=False, transport="tcp") for _ in range(4)]
        cm.tag_peer(a.peer_id, "useful", 50)  # before connecting
        cm.tag_peer(b.peer_id, "useful", 100)  # before connecting
        cm.protect(d.peer_id, "keep")  # before connecting
        addr = server.addrs_with_peer_id[0]
        for client in (a, b, c, d):
            await client.connect(addr)
        await _wait_for(lambda: len(server.connections()) == 4)
        cm.tag_peer(c.peer_id, "useful", 10)  # after connecting
        cm.protect(c.peer_id, "keep")  # after connecting

        # Scores: a 50, b 100, c 10 (protected), d 0 (protected).  Untag b: lowest now.
        # Only the candidates (a, b) count against low_water, as in go's BasicConnMgr.
        cm.untag_peer(b.peer_id, "useful")
        assert cm.score(b.peer_id) == 0
        assert [x.peer for x in cm.plan()] == [b.peer_id]
        assert await cm.trim() == 1
        await _wait_for(lambda: _peers(server) == {a.peer_id, c.peer_id, d.peer_id})

        # Unprotect d (protected before it connected) and c (after): both trimmable.
        cm.options.low_water = 1
        assert cm.unprotect(d.peer_id, "keep") is False
        assert cm.unprotect(c.peer_id, "keep") is False
        assert not cm.is_protected(c.peer_id) and not cm.is_protected(d.peer_id)
        assert await cm.trim() == 2
        await _wait_for(lambda: _peers(server) == {a.peer_id})

        # A protection added while connected holds, and removing it frees the peer.
        cm.options.low_water = 0
        cm.protect(a.peer_id, "x")
        assert await cm.trim() == 0
        cm.unprotect(a.peer_id, "x")
        assert await cm.trim() == 1
        await _wait_for(lambda: not server.connections())


async def test_background_check_trims_at_the_first_check(make_host):
    """Default check interval (= silence period): a trim that found nothing to close
    just after start must not push the first real trim to the second check."""
    period = 1.0
    server = _server(low_water=1, high_water=2, grace_period=0.0, silence_period=period)
    async with server:
        cm = server.connmgr
        assert isinstance(cm, BasicConnectionManager)
        clients = [await make_host(listen=False, transport="tcp") for _ in range(4)]
        for client in clients:
            cm.protect(client.peer_id, "connecting")
        addr = server.addrs_with_peer_id[0]
        await asyncio.gather(*(client.connect(addr) for client in clients))
        await _wait_for(lambda: len(server.connections()) == 4)
        # Crossing high water ran an automatic trim: everyone protected, nothing closed.
        assert cm.trimmed == 0 and cm.checks == 0
        for client in clients:
            cm.unprotect(client.peer_id, "connecting")
        await _wait_for(lambda: cm.trimmed > 0, timeout=4 * period + 10)
        checks_at_trim = cm.checks
        assert checks_at_trim == 1, f"first trim at check {checks_at_trim}"
        await _wait_for(lambda: len(server.connections()) == 1)
