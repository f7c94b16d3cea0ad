"""A peer known by /tcp and /quic-v1 addresses is dialled over QUIC first, TCP one
stagger delay later; when UDP is dropped TCP wins and the QUIC attempt leaves nothing."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from multiaddr import Multiaddr

from p2pkit.builder import HostBuilder
from p2pkit.host import Host


@pytest.fixture
async def dual_host() -> AsyncIterator[Callable[..., Awaitable[Host]]]:
    """Hosts with TCP (Noise + yamux) and QUIC."""
    hosts: list[Host] = []

    async def factory(listen: bool = True, **options: Any) -> Host:
        b = HostBuilder().transport("tcp").transport("quic").security("noise").muxer("yamux")
        if listen:
            b.listen("/ip4/127.0.0.1/tcp/0").listen("/ip4/127.0.0.1/udp/0/quic-v1")
        host = b.option(**options).build()
        hosts.append(host)
        return await host.start()

    yield factory
    for h in hosts:
        await h.stop()


def _by(host: Host, proto: str) -> Multiaddr:
    return next(a for a in host.listen_addrs if proto in {p.name for p in a.protocols()})


async def test_quic_wins_when_both_answer(dual_host):
    a = await dual_host()
    b = await dual_host(listen=False)
    b.peerstore.add_addrs(a.peer_id, [_by(a, "tcp"), _by(a, "quic-v1")], 3600)
    conn = await b.connect(a.peer_id)
    assert conn.security_protocol == "/quic-v1"
    assert len(b.connections(a.peer_id)) == 1  # TCP never started (QUIC answered first)


async def test_udp_dropped_tcp_wins_and_quic_attempt_leaves_nothing(dual_host):
    a = await dual_host()
    b = await dual_host(listen=False)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink:  # swallows every packet
        sink.bind(("127.0.0.1", 0))
        black_hole = Multiaddr(f"/ip4/127.0.0.1/udp/{sink.getsockname()[1]}/quic-v1")
        b.peerstore.add_addrs(a.peer_id, [_by(a, "tcp"), black_hole], 3600)
        start = time.monotonic()
        conn = await b.connect(a.peer_id)
        took = time.monotonic() - start
        assert sink.recv(65536, socket.MSG_DONTWAIT)  # QUIC was tried (its Initial arrived)
    assert conn.security_protocol == "/noise"
    stagger = b.swarm.dialer.options.stagger_delay
    assert stagger <= took < stagger + 5  # TCP waited one stagger delay for QUIC
    quic = next(t for t in b.swarm.transports if t.name == "quic")
    assert not quic._endpoints  # no socket
    pending = [t for t in asyncio.all_tasks() if t.get_name().startswith("p2pkit-dial-")]
    assert not pending  # no task
    assert not b.swarm.pending_dials and len(b.connections()) == 1  # no state
