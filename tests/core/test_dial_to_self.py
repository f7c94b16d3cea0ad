"""A host never connects to itself (go-libp2p ErrDialToSelf, js-libp2p "tried to dial
self"): its own peer id is refused before any dial, and an address of its own dialled
without ``/p2p/`` is refused once the handshake names the peer, on every transport,
leaving no connection on either side."""

from __future__ import annotations

import asyncio

import pytest
from multiaddr import Multiaddr

from p2pkit.builder import HostBuilder
from p2pkit.errors import DialError, DialToSelf
from tests.hosts import host_starter

LISTEN = {
    "tcp": "/ip4/127.0.0.1/tcp/0",
    "quic": "/ip4/127.0.0.1/udp/0/quic-v1",
    "websocket": "/ip4/127.0.0.1/tcp/0/ws",
}


@pytest.mark.parametrize("transport", list(LISTEN))
async def test_a_host_does_not_connect_to_itself(transport):
    async with host_starter() as start:
        host = await start(HostBuilder().transport(transport).listen(LISTEN[transport]))
        (addr,) = host.listen_addrs
        with pytest.raises(DialToSelf):
            await host.connect(Multiaddr(f"{addr}/p2p/{host.peer_id}"))
        with pytest.raises(DialToSelf):
            await host.connect(host.peer_id)
        with pytest.raises(DialToSelf):  # found out from the handshake
            await host.connect(addr)
        assert issubclass(DialToSelf, DialError)
        await asyncio.sleep(0.1)  # the inbound half is refused too
        assert host.connections() == []
        # The host still serves others.
        other = await start(HostBuilder().transport(transport))
        conn = await other.connect(Multiaddr(f"{addr}/p2p/{host.peer_id}"))
        assert conn.peer == host.peer_id
