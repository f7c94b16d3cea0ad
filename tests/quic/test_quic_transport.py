"""The QUIC transport on its own: addresses, the libp2p certificate rules inside the
handshake (both directions), dial failures that leave nothing behind, the plugin entry."""

from __future__ import annotations

import asyncio
import datetime
import os
import socket

import pytest
from cryptography import x509
from multiaddr import Multiaddr

from p2pkit.crypto.tls_certificate import CertificateError
from p2pkit.errors import (
    AddressError,
    ConnectionClosed,
    DialError,
    HandshakeError,
    StreamClosed,
)
from p2pkit.network import MuxedTransportConnection
from p2pkit.peer import PeerId
from p2pkit_quic import QuicTransport, from_sockaddr, is_quic, parse
from p2pkit_quic import endpoint as endpoint_mod
from p2pkit_quic.plugin import p2pkit_transports
from p2pkit_tls.testing import custom_certificate

from .conftest import LISTEN, quic_pair


@pytest.mark.parametrize(
    "addr",
    [
        "/ip4/127.0.0.1/udp/4001/quic-v1",
        "/ip6/::1/udp/4001/quic-v1",
        "/ip4/1.2.3.4/udp/1/quic-v1/p2p/12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA",
    ],
)
def test_quic_addresses(addr):
    assert is_quic(Multiaddr(addr))


@pytest.mark.parametrize(
    "addr",
    [
        "/ip4/127.0.0.1/tcp/4001",
        "/ip4/127.0.0.1/udp/4001",
        "/ip4/127.0.0.1/udp/4001/quic",
        "/ip4/127.0.0.1/udp/4001/quic-v1/webtransport",
        "/dns4/example.com/udp/4001/quic",
    ],
)
def test_not_quic_addresses(addr):
    assert not is_quic(Multiaddr(addr))
    with pytest.raises(AddressError):
        parse(Multiaddr(addr))


def test_sockaddr_mapping():
    assert str(from_sockaddr(("127.0.0.1", 5))) == "/ip4/127.0.0.1/udp/5/quic-v1"
    assert str(from_sockaddr(("::1", 5, 0, 0))) == "/ip6/::1/udp/5/quic-v1"
    assert from_sockaddr("nonsense") is None


def test_plugin_spec():
    (spec,) = p2pkit_transports()
    assert spec.name == "quic" and spec.provides == ("quic-v1",) and spec.kind == "transport"


async def test_dial_and_listen_report_peers_and_addresses(transports):
    server, client = transports(), transports()
    conn, accepted = await quic_pair(server, client)
    assert isinstance(conn, MuxedTransportConnection)
    assert conn.remote_peer == PeerId.from_public_key(server.private_key.public_key)
    assert accepted.remote_peer == PeerId.from_public_key(client.private_key.public_key)
    assert conn.remote_addr is not None and is_quic(conn.remote_addr)
    # The dial socket is bound to 0.0.0.0: its connections report the address the route
    # leaves from, which is what the peer sees, not 0.0.0.0.
    assert accepted.remote_addr == conn.local_addr
    assert accepted.local_addr == conn.remote_addr
    assert conn.security_protocol == conn.muxer_protocol == "/quic-v1"
    conn.muxed.abort()
    async with asyncio.timeout(5):
        await accepted.muxed.wait_closed()  # the peer learns of the abort at once


async def test_a_wildcard_listener_reports_the_address_it_was_reached_at(transports):
    server, client = transports(), transports()
    accepted: list[MuxedTransportConnection] = []
    listener = await server.listen(Multiaddr("/ip4/0.0.0.0/udp/0/quic-v1"), accepted.append)
    port = parse(listener.addrs[0]).port
    conn = await client.dial(Multiaddr(f"/ip4/127.0.0.1/udp/{port}/quic-v1"), timeout=5)
    async with asyncio.timeout(5):
        while not accepted:
            await asyncio.sleep(0.01)
    assert str(accepted[0].local_addr) == f"/ip4/127.0.0.1/udp/{port}/quic-v1"
    assert accepted[0].remote_addr == conn.local_addr
    conn.muxed.abort()


BAD_CERTIFICATES = {
    "expired": {
        "not_before": datetime.datetime(2000, 1, 1, tzinfo=datetime.UTC),
        "not_after": datetime.datetime(2001, 1, 1, tzinfo=datetime.UTC),
    },
    "bad signature": {"tamper_signature": True},
    "no libp2p extension": {"oid": x509.ObjectIdentifier("1.2.3.4")},
}


@pytest.mark.parametrize("bad", list(BAD_CERTIFICATES))
async def test_client_rejects_bad_server_certificate(transports, bad):
    server, client = transports(), transports()
    server._certificate = custom_certificate(server.private_key, **BAD_CERTIFICATES[bad])
    accepted: list[MuxedTransportConnection] = []
    listener = await server.listen(Multiaddr(LISTEN), accepted.append)
    with pytest.raises(CertificateError):
        await client.dial(listener.addrs[0], timeout=5)
    assert not accepted
    assert not client._endpoints  # the dial's socket is closed


async def _dial_refused_by_server(client: QuicTransport, addr: Multiaddr) -> None:
    """The server refuses our certificate: the dial fails, or (TLS 1.3: the client has
    the server's Finished before the server checked the client) the connection is
    closed by the server right after the handshake."""
    try:
        conn = await client.dial(addr, timeout=5)
    except HandshakeError:
        return
    async with asyncio.timeout(5):
        await conn.muxed.wait_closed()


@pytest.mark.parametrize("bad", list(BAD_CERTIFICATES))
async def test_server_rejects_bad_client_certificate(transports, bad):
    server, client = transports(), transports()
    client._certificate = custom_certificate(client.private_key, **BAD_CERTIFICATES[bad])
    accepted: list[MuxedTransportConnection] = []
    listener = await server.listen(Multiaddr(LISTEN), accepted.append)
    await _dial_refused_by_server(client, listener.addrs[0])
    await asyncio.sleep(0.05)
    assert not accepted
    assert listener.endpoint.sessions == 0 and listener.endpoint.handshakes == 0


async def test_server_requires_a_client_certificate(transports, monkeypatch):
    server, client = transports(), transports()
    stock = endpoint_mod.make_configuration

    def without_client_certificate(certificate, options, *, is_client):
        config = stock(certificate, options, is_client=is_client)
        if is_client:
            config.certificate = config.private_key = None
        return config

    monkeypatch.setattr(endpoint_mod, "make_configuration", without_client_certificate)
    accepted: list[MuxedTransportConnection] = []
    listener = await server.listen(Multiaddr(LISTEN), accepted.append)
    await _dial_refused_by_server(client, listener.addrs[0])
    await asyncio.sleep(0.05)
    assert not accepted


async def test_dial_to_silent_udp_port_times_out_and_leaves_nothing(transports):
    client = transports()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink:  # swallows everything
        sink.bind(("127.0.0.1", 0))
        port = sink.getsockname()[1]
        with pytest.raises(DialError, match="timed out"):
            await client.dial(Multiaddr(f"/ip4/127.0.0.1/udp/{port}/quic-v1"), timeout=0.3)
    assert not client._endpoints


async def test_cancelled_dial_leaves_nothing(transports):
    client = transports()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink:
        sink.bind(("127.0.0.1", 0))
        port = sink.getsockname()[1]
        task = asyncio.create_task(
            client.dial(Multiaddr(f"/ip4/127.0.0.1/udp/{port}/quic-v1"), timeout=5)
        )
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert not client._endpoints


async def test_dial_port_zero_is_an_address_error(transports):
    with pytest.raises(AddressError):
        await transports().dial(Multiaddr("/ip4/127.0.0.1/udp/0/quic-v1"))


async def test_listener_close_keeps_connections_then_releases_the_socket(transports):
    server, client = transports(), transports()
    accepted: list[MuxedTransportConnection] = []
    listener = await server.listen(Multiaddr(LISTEN), accepted.append)
    conn = await client.dial(listener.addrs[0], timeout=5)
    async with asyncio.timeout(5):
        while not accepted:
            await asyncio.sleep(0.01)
    await listener.close()
    stream = await conn.muxed.open_stream()
    await stream.write(b"still here")
    inbound = await accepted[0].muxed.accept_stream()
    assert await inbound.readexactly(10) == b"still here"
    assert not listener.endpoint.closed
    conn.muxed.abort()
    async with asyncio.timeout(5):
        await accepted[0].muxed.wait_closed()
    assert listener.endpoint.closed  # its last connection ended
    with pytest.raises(DialError):
        await client.dial(listener.addrs[0], timeout=0.3)


async def test_transport_close_aborts_leftovers(transports):
    server, client = transports(), transports()
    conn, accepted = await quic_pair(server, client)
    await client.close()
    assert conn.muxed.is_closed
    async with asyncio.timeout(5):
        await accepted.muxed.wait_closed()
    assert isinstance(server, QuicTransport)


async def test_keep_alive_outlives_the_idle_timeout(transports):
    server = transports(idle_timeout=0.6, keep_alive=0.15)
    client = transports(idle_timeout=0.6, keep_alive=0.15)
    conn, accepted = await quic_pair(server, client)
    await asyncio.sleep(1.5)  # 2.5 idle timeouts without application traffic
    assert not conn.muxed.is_closed and not accepted.muxed.is_closed
    conn.muxed.abort()


async def test_idle_connection_ends_without_keep_alive(transports):
    server = transports(idle_timeout=0.3, keep_alive=0)
    client = transports(idle_timeout=0.3, keep_alive=0)
    conn, accepted = await quic_pair(server, client)
    async with asyncio.timeout(5):
        await conn.muxed.wait_closed()
        await accepted.muxed.wait_closed()
    assert not client._endpoints  # the dial's socket went with its connection


async def test_data_before_fin_stays_readable_after_the_connection_closed(transports):
    """The peer sent data + FIN, then closed the connection: all of it is still read."""
    server, client = transports(), transports()
    conn, accepted = await quic_pair(server, client)
    out = await conn.muxed.open_stream()
    await out.write(b"q")
    await out.close_write()
    inbound = await accepted.muxed.accept_stream()
    assert await inbound.read() == b"q"
    payload = os.urandom(1 << 20)
    await inbound.write(payload)
    await inbound.close_write()
    async with asyncio.timeout(10):
        await accepted.muxed.close()  # waits until the payload is acknowledged
        await conn.muxed.wait_closed()
    got = b""
    while chunk := await out.read():
        got += chunk
    assert got == payload
    with pytest.raises(StreamClosed):  # we had closed our side
        await out.write(b"late")
    with pytest.raises(ConnectionClosed):
        await conn.muxed.open_stream()


def test_memory_hook_bounds_the_windows():
    from p2pkit_quic.options import QuicOptions, apply_memory_limit

    bounded = apply_memory_limit(QuicOptions(), 1 << 20)
    assert bounded.connection_window == bounded.stream_window == 1 << 20
    assert apply_memory_limit(QuicOptions(), 1 << 30) == QuicOptions()
    with pytest.raises(ValueError):
        apply_memory_limit(QuicOptions(), 1000)
