"""The host end to end over real loopback TCP: connect, streams, handlers, events, bad peers."""

from __future__ import annotations

import asyncio
import gc
import hashlib
import os
import weakref

import pytest
from multiaddr import Multiaddr

from p2pkit.abc import MuxedStream
from p2pkit.crypto import generate_private_key
from p2pkit.errors import (
    AddressError,
    P2PError,
    PeerIdMismatch,
    ProtocolNotSupported,
    StreamReset,
)
from p2pkit.events import ClosedStream, Connected, Disconnected, OpenedStream, PeerIdentified
from p2pkit.peer import PeerId
from p2pkit.protocols.echo import PROTOCOL_ID as ECHO
from p2pkit.protocols.perf import PROTOCOL_ID as PERF
from p2pkit.protocols.perf import perf
from p2pkit.protocols.ping import PROTOCOL_ID as PING
from p2pkit.protocols.ping import ping
from p2pkit.streams import LazyMuxedStream


async def test_connect_ping_echo_perf(make_host):
    a = await make_host()
    b = await make_host(listen=False)
    conn = await b.connect(a.addrs_with_peer_id[0])
    assert conn.peer == a.peer_id
    rtts = await ping(await conn.new_stream(PING), 3)
    assert len(rtts) == 3 and all(r > 0 for r in rtts)

    stream = await b.new_stream(a.peer_id, [ECHO])
    payload = os.urandom(300_000)
    await stream.write(payload)
    await stream.close_write()
    got = b""
    while chunk := await stream.read():
        got += chunk
    assert got == payload

    result = await perf(await conn.new_stream(PERF), 2_000_000, 3_000_000)
    assert result.upload_bytes == 2_000_000 and result.download_bytes == 3_000_000


async def test_reuses_connection_and_shares_concurrent_dials(make_host):
    a = await make_host()
    b = await make_host(listen=False)
    addr = a.addrs_with_peer_id[0]
    c1, c2 = await asyncio.gather(b.connect(addr), b.connect(addr))
    assert c1 is c2
    assert await b.connect(a.peer_id) is c1  # known from the peerstore/connection
    assert len(b.connections(a.peer_id)) == 1


async def test_negotiation_fallback_and_not_supported(make_host):
    a = await make_host()
    b = await make_host(listen=False)
    await b.connect(a.addrs_with_peer_id[0])
    s = await b.new_stream(a.peer_id, ["/nope/1.0.0", ECHO])
    assert s.protocol == ECHO
    await s.close()
    with pytest.raises(ProtocolNotSupported):
        await b.new_stream(a.peer_id, ["/nope/1.0.0", "/nope/2.0.0"])
    # A single protocol, negotiated fully (the default): refused at once.
    with pytest.raises(ProtocolNotSupported):
        await b.new_stream(a.peer_id, ["/nope/3.0.0"])
    # Lazily (0-RTT): the refusal shows on the first read.
    lazy = await b.new_stream(a.peer_id, ["/nope/3.0.0"], lazy=True)
    with pytest.raises(ProtocolNotSupported):
        await lazy.read()
    # The connection survives all of this.
    assert len(await ping(await b.new_stream(a.peer_id, PING), 1)) == 1


async def test_match_predicate_handler_and_remove(make_host):
    a = await make_host()
    b = await make_host(listen=False)
    seen: list[str | None] = []

    async def handler(stream: MuxedStream) -> None:
        seen.append(stream.protocol)
        await stream.write(b"v")
        await stream.close_write()

    a.set_stream_handler("/app/", handler, match=lambda p: p.startswith("/app/1."))
    s = await b.new_stream(a.addrs_with_peer_id[0], ["/app/1.4.2"])
    assert await s.read() == b"v"
    assert seen == ["/app/1.4.2"]
    a.remove_stream_handler("/app/")
    with pytest.raises(ProtocolNotSupported):
        await b.new_stream(a.peer_id, ["/app/1.0.0", "/app/1.0.1"])


async def test_connection_of_a_handled_stream(make_host):
    """Handlers learn their connection from the host (identify relies on it)."""
    a = await make_host()
    b = await make_host(listen=False)
    found: list[object] = []

    async def handler(stream: MuxedStream) -> None:
        found.append(a.connection_of(stream))
        await stream.write(b"v")
        await stream.close_write()

    a.set_stream_handler("/app/conn-of/1", handler)
    conn = await b.connect(a.addrs_with_peer_id[0])
    s = await conn.new_stream("/app/conn-of/1")
    assert await s.read() == b"v"
    (server_conn,) = a.connections(b.peer_id)
    assert found == [server_conn]
    assert b.connection_of(s) is conn  # an outbound stream: found among the connections
    assert await s.read() == b""
    await s.close()
    async with asyncio.timeout(5):
        while a.router.handled:  # forgotten once the handler's task is done
            await asyncio.sleep(0.01)


async def test_events_in_order(make_host):
    a = await make_host()
    b = await make_host(listen=False)
    sub = a.events.subscribe(Connected, Disconnected, OpenedStream, ClosedStream)
    ident = b.events.subscribe(PeerIdentified)
    conn = await b.connect(a.addrs_with_peer_id[0])
    s = await conn.new_stream(ECHO)
    await s.write(b"x")
    await s.close_write()
    assert await s.read() == b"x"
    ev = await sub.get(5)
    assert isinstance(ev, Connected) and ev.peer == b.peer_id
    identified = await ident.get(5)
    assert isinstance(identified, PeerIdentified) and identified.peer == a.peer_id
    assert PING in identified.protocols and identified.agent_version.startswith("p2pkit/")
    kinds = []
    await b.disconnect(a.peer_id)
    while True:
        ev = await sub.get(5)
        kinds.append((type(ev).__name__, getattr(ev, "protocol", None)))
        if isinstance(ev, Disconnected):
            break
    assert ("OpenedStream", ECHO) in kinds and ("ClosedStream", ECHO) in kinds
    assert kinds[-1][0] == "Disconnected"
    assert b.peerstore.protocols(a.peer_id)  # filled by identify


async def test_peer_id_mismatch_on_dial(make_host):
    a = await make_host()
    b = await make_host(listen=False)
    other = PeerId.from_public_key(generate_private_key("ed25519").public_key)
    tcp = a.listen_addrs[0]
    with pytest.raises(PeerIdMismatch):
        await b.connect(Multiaddr(f"{tcp}/p2p/{other}"))
    assert b.connections() == []
    # A correct dial afterwards works: nothing was left behind.
    assert (await b.connect(a.addrs_with_peer_id[0])).peer == a.peer_id


async def test_malformed_multiaddrs(make_host):
    b = await make_host(listen=False)
    for bad in ["/ip4/999.1.1.1/tcp/1", "not-a-multiaddr", "/ip4/127.0.0.1/udp/1/quic-v1"]:
        with pytest.raises(AddressError):
            await b.connect(bad)


async def test_many_streams_and_disconnect(make_host):
    a = await make_host()
    b = await make_host(listen=False)
    conn = await b.connect(a.addrs_with_peer_id[0])

    async def one(i: int) -> bytes:
        s = await conn.new_stream(ECHO)
        data = os.urandom(1000 + i)
        await s.write(data)
        await s.close_write()
        out = b""
        while chunk := await s.read():
            out += chunk
        return hashlib.sha256(out).digest() if out == data else b""

    results = await asyncio.gather(*(one(i) for i in range(50)))
    assert all(results)
    await b.disconnect(a.peer_id)
    async with asyncio.timeout(5):
        while a.connections():
            await asyncio.sleep(0.01)
    assert b.connections() == []


async def test_lazy_stream_reader_and_half_close_concurrently(make_host):
    """A reader task and a half-closing writer both wait for the lazy answer, once."""
    a = await make_host()
    b = await make_host(listen=False)
    conn = await b.connect(a.addrs_with_peer_id[0])
    for _ in range(5):
        s = await conn.new_stream(ECHO, lazy=True)
        assert isinstance(s, LazyMuxedStream)

        async def read_all(stream: MuxedStream = s) -> bytes:
            out = b""
            while chunk := await stream.read():
                out += chunk
            return out

        reader = asyncio.ensure_future(read_all())
        await asyncio.sleep(0)
        await s.write(b"payload")
        await s.close_write()
        assert await asyncio.wait_for(reader, 5) == b"payload"


@pytest.mark.parametrize("protocol", [PING, ECHO, PERF])
async def test_idle_service_streams_are_reset(make_host, monkeypatch, protocol):
    """ping, echo and perf handlers end a stream whose peer goes quiet (no parking)."""
    from p2pkit.protocols import echo as echo_mod
    from p2pkit.protocols import perf as perf_mod
    from p2pkit.protocols import ping as ping_mod

    for mod in (echo_mod, perf_mod, ping_mod):
        monkeypatch.setattr(mod, "IDLE_TIMEOUT", 0.3)
    a = await make_host()
    b = await make_host(listen=False)
    s = await b.new_stream(a.addrs_with_peer_id[0], protocol)
    if protocol == ECHO:
        await s.write(b"x")
        assert await asyncio.wait_for(s.read(), 5) == b"x"
    elif protocol == PERF:
        await s.write((1).to_bytes(8, "big"))  # then never finishes the upload
    loop = asyncio.get_running_loop()
    start = loop.time()
    with pytest.raises(StreamReset):
        await asyncio.wait_for(s.read(), 5)
    assert loop.time() - start < 4
    # The connection is fine: a fresh ping still works.
    assert len(await ping(await b.new_stream(a.peer_id, PING), 1)) == 1


async def test_cancelled_close_aborts_and_propagates(make_host):
    """Closing a connection that waits for a stream can be cancelled: the cancellation
    reaches the caller (it is not swallowed) and the connection is aborted."""
    a = await make_host()
    b = await make_host(listen=False)
    conn = await b.connect(a.addrs_with_peer_id[0])
    stream = await conn.new_stream(ECHO)  # open both ways: the graceful close waits
    closing = asyncio.ensure_future(b.swarm.close_connection(conn))
    await asyncio.sleep(0.05)
    assert not closing.done()
    closing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await closing
    assert conn.is_closed
    with pytest.raises(P2PError):
        await stream.read()


async def test_a_finished_inbound_stream_is_not_kept_alive_by_its_connection(make_host):
    """The connection's accept loop waits for the next stream for as long as the
    connection lives; it used to hold the last stream it accepted (and what that stream
    had buffered) until then."""
    a = await make_host(transport="tcp")
    b = await make_host(transport="tcp", listen=False)
    seen: list[weakref.ref[MuxedStream]] = []
    done = asyncio.Event()

    async def handler(stream: MuxedStream) -> None:
        seen.append(weakref.ref(stream))
        await stream.read()
        await stream.close()
        done.set()

    a.set_stream_handler("/p2pkit/test/once/1.0.0", handler)
    conn = await b.connect(a.addrs_with_peer_id[0])
    stream = await conn.new_stream(["/p2pkit/test/once/1.0.0"])
    await stream.write(b"x" * 1000)
    await stream.close()
    assert await stream.read() == b""
    async with asyncio.timeout(5):
        await done.wait()
    for _ in range(50):  # the handler's task and the muxer let go within a few turns
        gc.collect()
        if seen[0]() is None:
            break
        await asyncio.sleep(0.01)
    assert seen[0]() is None
    assert conn.usable  # the connection itself is still open
