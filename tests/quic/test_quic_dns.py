"""QUIC addresses by DNS name (``/dns|dns4|dns6/<name>/udp/<port>/quic-v1``): dialled as
TCP's are (the name resolved at the dial), the addresses of a name raced as RFC 8305
says, and refused for listening (a UDP socket binds to an IP)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Iterator

import pytest
from multiaddr import Multiaddr

from p2pkit.errors import AddressError, DialError
from p2pkit.gater import ConnectionGated
from p2pkit.protocols.ping import PROTOCOL_ID as PING
from p2pkit.protocols.ping import ping
from p2pkit_quic import is_quic, parse
from p2pkit_quic.addresses import QuicTarget
from p2pkit_quic.transport import NEXT_ADDRESS_DELAY

from .conftest import LISTEN


@pytest.mark.parametrize("kind", ["dns", "dns4", "dns6"])
def test_names_are_dialable_not_listenable(transports, kind):
    addr = Multiaddr(f"/{kind}/example.com/udp/4001/quic-v1")
    assert is_quic(addr)
    target = parse(addr)
    assert target.needs_resolution and target.host == "example.com" and target.port == 4001
    assert not target.is_loopback and not target.is_unspecified
    transport = transports()
    assert transport.can_dial(addr)
    assert not transport.can_listen(addr)
    assert transport.can_listen(Multiaddr(LISTEN))


@pytest.mark.parametrize("kind", ["dns", "dns4"])
async def test_host_dials_a_quic_address_by_name(make_host, kind):
    server = await make_host()
    client = await make_host(listen=False)
    port = parse(server.listen_addrs[0]).port
    conn = await client.connect(
        Multiaddr(f"/{kind}/localhost/udp/{port}/quic-v1/p2p/{server.peer_id}")
    )
    assert conn.peer == server.peer_id
    assert str(conn.remote_addr) == f"/ip4/127.0.0.1/udp/{port}/quic-v1"
    rtts = await ping(await client.new_stream(server.peer_id, [PING]), 2)
    assert len(rtts) == 2


async def test_a_name_is_not_listened_on(make_host):
    host = await make_host(listen=False)
    with pytest.raises(AddressError):
        await host.listen(Multiaddr("/dns4/localhost/udp/0/quic-v1"))


async def test_name_that_does_not_resolve_is_a_dial_error(transports):
    with pytest.raises(DialError, match="resolv"):
        await transports().dial(Multiaddr("/dns4/no-such-host.invalid/udp/4001/quic-v1"), timeout=5)


def _silent_port(sink: socket.socket) -> QuicTarget:
    """A bound UDP socket that never answers: a QUIC dial to it waits for its timeout
    (an unconnected socket hears no ICMP error either)."""
    sink.bind(("127.0.0.1", 0))
    return QuicTarget("127.0.0.1", sink.getsockname()[1], socket.AF_INET)


@contextlib.contextmanager
def _silent_ports(n: int) -> Iterator[list[QuicTarget]]:
    with contextlib.ExitStack() as stack:
        sinks = [
            stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_DGRAM)) for _ in range(n)
        ]
        yield [_silent_port(sink) for sink in sinks]


async def test_a_silent_address_of_a_name_delays_the_next_only_briefly(transports):
    server, client = transports(), transports()
    listener = await server.listen(Multiaddr(LISTEN), lambda conn: None)
    live = parse(listener.addrs[0])
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink:
        dead = _silent_port(sink)
        started = time.monotonic()
        conn = await client._dial_any(
            Multiaddr("/dns4/test/udp/1/quic-v1"), [dead, live], loop.time() + 10
        )
        took = time.monotonic() - started
    assert conn.remote_addr == listener.addrs[0]
    assert NEXT_ADDRESS_DELAY * 0.9 <= took < 5  # the dead address was not waited out
    # The losing attempt was aborted: only the winner's session is left.
    assert sum(e.sessions for e in client._endpoints) == 1
    conn.muxed.abort()


async def test_a_refused_address_starts_the_next_at_once(transports, monkeypatch):
    """A listener that refuses (CONNECTION_REFUSED, at once) is a failed address: the
    next one starts then, not after NEXT_ADDRESS_DELAY (made long here, so that a slow
    machine cannot blur the difference)."""
    monkeypatch.setattr("p2pkit_quic.transport.NEXT_ADDRESS_DELAY", 5.0)
    refusing, server, client = transports(), transports(), transports()

    def admit(local: object, remote: object) -> object:
        raise ConnectionGated("accept", None, remote)

    refuser = await refusing.listen(Multiaddr(LISTEN), lambda conn: None, admit=admit)
    listener = await server.listen(Multiaddr(LISTEN), lambda conn: None)
    targets = [parse(refuser.addrs[0]), parse(listener.addrs[0])]
    loop = asyncio.get_running_loop()
    started = time.monotonic()
    conn = await client._dial_any(Multiaddr("/dns/test/udp/1/quic-v1"), targets, loop.time() + 10)
    assert time.monotonic() - started < 4
    assert conn.remote_addr == listener.addrs[0]
    conn.muxed.abort()


async def test_every_address_silent_is_one_dial_error_naming_each(transports):
    client = transports()
    loop = asyncio.get_running_loop()
    with _silent_ports(2) as targets:
        with pytest.raises(DialError) as info:
            await client._dial_any(
                Multiaddr("/dns4/test/udp/1/quic-v1"), targets, loop.time() + 0.6
            )
    assert len(info.value.errors) == 2
    assert all("timed out" in str(error) for _, error in info.value.errors)
    await asyncio.sleep(0.05)
    assert not any(e.sessions for e in client._endpoints)


async def test_a_cancelled_dial_by_name_leaves_nothing(transports):
    client = transports()
    loop = asyncio.get_running_loop()
    with _silent_ports(2) as targets:
        task = asyncio.create_task(
            client._dial_any(Multiaddr("/dns4/test/udp/1/quic-v1"), targets, loop.time() + 5)
        )
        await asyncio.sleep(NEXT_ADDRESS_DELAY + 0.1)  # both attempts running
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert not client._endpoints
