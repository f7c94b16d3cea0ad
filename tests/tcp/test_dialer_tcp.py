"""The dialer over real loopback sockets: dead and hung addresses, aggregate errors,
backoff, the overall timeout, IPv6 preference and cancellation."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator

import pytest
from multiaddr import Multiaddr

from p2pkit.crypto import generate_private_key
from p2pkit.dialer import AddressBackedOff
from p2pkit.errors import DialError, P2PError
from p2pkit.peer import PeerId
from p2pkit.protocols.ping import PROTOCOL_ID as PING
from p2pkit.protocols.ping import ping


@pytest.fixture
def hung_port() -> Iterator[Multiaddr]:
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


async def test_three_addresses_two_dead_succeeds_fast(make_host, hung_port):
    server = await make_host()
    client = await make_host(listen=False, handshake_timeout=10.0, dial_timeout=10.0)
    good = server.listen_addrs[0]
    client.peerstore.add_addrs(server.peer_id, [hung_port, closed_port(), good], 3600)
    t0 = time.monotonic()
    conn = await client.connect(server.peer_id)
    elapsed = time.monotonic() - t0
    assert conn.remote_addr == good
    assert elapsed < 1.5, elapsed  # 10 s timeouts: only staggering makes this fast
    assert len(client.connections()) == 1
    assert len(await ping(await conn.new_stream(PING), 1)) == 1
    # The hung attempt was cancelled: the dial left no pending work behind (the one
    # connection that won is all the resource manager counts).
    assert client.swarm.rcmgr.system.conns_out == 1


async def test_aggregate_error_then_backoff(make_host, hung_port):
    client = await make_host(listen=False, handshake_timeout=0.3)

    peer = PeerId.from_public_key(generate_private_key("ed25519").public_key)
    dead = [closed_port(), hung_port, closed_port()]
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


async def test_overall_timeout(make_host, hung_port):
    client = await make_host(listen=False, handshake_timeout=10.0)
    client.dialer.options.overall_timeout = 0.4

    peer = PeerId.from_public_key(generate_private_key("ed25519").public_key)
    client.peerstore.add_addrs(peer, [hung_port], 3600)
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


async def test_cancelled_connect_cancels_attempts(make_host, hung_port):
    client = await make_host(listen=False, handshake_timeout=10.0)

    peer = PeerId.from_public_key(generate_private_key("ed25519").public_key)
    client.peerstore.add_addrs(peer, [hung_port], 3600)
    task = asyncio.ensure_future(client.connect(peer))
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert client.swarm.rcmgr.system.empty
    assert client.swarm.pending_dials == {}
    # The cancelled attempt is not a failure of the address: no backoff recorded.
    assert client.dialer.backoff.until(peer, hung_port) is None


async def test_a_cancelled_caller_leaves_a_shared_dial_to_the_others(make_host, hung_port):
    """Two connects to one peer share one dial; cancelling the first used to end the
    second with the first's CancelledError (past every ``except Exception``)."""
    client = await make_host(listen=False, handshake_timeout=0.6)
    peer = PeerId.from_public_key(generate_private_key("ed25519").public_key)
    client.peerstore.add_addrs(peer, [hung_port], 3600)
    first = asyncio.ensure_future(client.connect(peer))
    await asyncio.sleep(0.1)
    second = asyncio.ensure_future(client.connect(peer))
    await asyncio.sleep(0.1)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    with pytest.raises(P2PError):  # the silent address times out, for the second only
        await asyncio.wait_for(second, 10)
    assert not second.cancelled()
    assert client.swarm.pending_dials == {} and client.swarm.rcmgr.system.empty
