"""Dialer: ranking, backoff, happy-eyeballs race with dead addresses, aggregate errors,
timeouts and simultaneous dials -- over real loopback sockets."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator

import pytest
from multiaddr import Multiaddr

from p2pkit.dialer import AddressBackedOff, DialBackoff, rank_addrs
from p2pkit.errors import DialError
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


@pytest.fixture
def blackhole() -> Iterator[Multiaddr]:
    """A TCP port that completes the TCP handshake (kernel backlog) and then never
    says a word: the attempt hangs until cancelled or timed out."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    try:
        yield Multiaddr(f"/ip4/127.0.0.1/tcp/{s.getsockname()[1]}")
    finally:
        s.close()


def closed_port() -> Multiaddr:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return Multiaddr(f"/ip4/127.0.0.1/tcp/{port}")


async def test_three_addresses_two_dead_succeeds_fast(make_host, blackhole):
    server = await make_host()
    client = await make_host(listen=False, handshake_timeout=10.0, dial_timeout=10.0)
    good = server.listen_addrs[0]
    client.peerstore.add_addrs(server.peer_id, [blackhole, closed_port(), good], 3600)
    t0 = time.monotonic()
    conn = await client.connect(server.peer_id)
    elapsed = time.monotonic() - t0
    assert conn.remote_addr == good
    assert elapsed < 1.5, elapsed  # 10 s timeouts: only staggering makes this fast
    assert len(client.connections()) == 1
    assert len(await ping(await conn.new_stream(PING), 1)) == 1
    # The hung attempt was cancelled: the dial left no pending work behind.
    assert client.swarm.counts.pending_outbound == 0


async def test_aggregate_error_then_backoff(make_host, blackhole):
    client = await make_host(listen=False, handshake_timeout=0.3)
    from p2pkit.crypto import generate_private_key
    from p2pkit.peer import PeerId

    peer = PeerId.from_public_key(generate_private_key("ed25519").public_key)
    dead = [closed_port(), blackhole, closed_port()]
    client.peerstore.add_addrs(peer, dead, 3600)
    with pytest.raises(DialError) as info:
        await client.connect(peer)
    err = info.value
    assert {a for a, _ in err.errors} == set(dead)
    assert all(str(a) in str(err) for a in dead)  # one line per address, with the reason
    assert "HandshakeTimeout" in str(err) and "DialError" in str(err)
    t0 = time.monotonic()
    with pytest.raises(DialError) as info:
        await client.connect(peer)
    assert time.monotonic() - t0 < 0.2  # nothing dialed: every address is in backoff
    assert all(isinstance(e, AddressBackedOff) for _, e in info.value.errors)
    assert "in backoff" in str(info.value)
    # An explicit multiaddr dial ignores backoff (the user asked for that address).
    with pytest.raises(DialError):
        await client.connect(dead[0])


async def test_overall_timeout(make_host, blackhole):
    client = await make_host(listen=False, handshake_timeout=10.0)
    client.dialer.options.overall_timeout = 0.4
    from p2pkit.crypto import generate_private_key
    from p2pkit.peer import PeerId

    peer = PeerId.from_public_key(generate_private_key("ed25519").public_key)
    client.peerstore.add_addrs(peer, [blackhole], 3600)
    t0 = time.monotonic()
    with pytest.raises(DialError, match="overall dial timeout"):
        await client.connect(peer)
    assert time.monotonic() - t0 < 2.0


def _have_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _have_ipv6_loopback(), reason="no IPv6 loopback")
async def test_ipv6_preferred_when_both_work(make_host):
    server = await make_host()
    await server.listen("/ip6/::1/tcp/0")
    client = await make_host(listen=False)
    v4 = [a for a in server.listen_addrs if "/ip4/" in str(a)]
    v6 = [a for a in server.listen_addrs if "/ip6/" in str(a)]
    client.peerstore.add_addrs(server.peer_id, [*v4, *v6], 3600)
    conn = await client.connect(server.peer_id)
    assert "/ip6/" in str(conn.remote_addr)


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
    assert a.swarm.counts.inbound == a.swarm.counts.outbound == 0
    assert b.swarm.counts.inbound == b.swarm.counts.outbound == 0


async def test_cancelled_connect_cancels_attempts(make_host, blackhole):
    client = await make_host(listen=False, handshake_timeout=10.0)
    from p2pkit.crypto import generate_private_key
    from p2pkit.peer import PeerId

    peer = PeerId.from_public_key(generate_private_key("ed25519").public_key)
    client.peerstore.add_addrs(peer, [blackhole], 3600)
    task = asyncio.ensure_future(client.connect(peer))
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert client.swarm.counts.pending_outbound == 0
    assert client.swarm.pending_dials == {}
    # The cancelled attempt is not a failure of the address: no backoff recorded.
    assert client.dialer.backoff.until(peer, blackhole) is None
