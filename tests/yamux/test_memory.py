"""Yamux reserves what a peer makes it buffer in the connection's memory scope.

Two real sessions over an in-memory channel pair; the receiving one accounts in a
:class:`~p2pkit.rcmgr.ConnectionScope` of a real resource manager.  A refused
reservation resets only the stream the data came on; reading releases; ending the
session releases everything (the system scope returns to 0).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator

import pytest

from p2pkit.abc import MuxedStream, StreamMuxer
from p2pkit.crypto import generate_private_key
from p2pkit.errors import StreamReset, StreamResetByLimit
from p2pkit.limits import UNLIMITED, LimitExceeded, Limits, ScopeLimit
from p2pkit.rcmgr import ConnectionScope, ResourceManager
from p2pkit.reservation import HEADROOM, IDLE_MAX
from p2pkit.security.plaintext import PlaintextSecurity
from p2pkit.tables import EMPTY_OVERSIZED, OVERSIZED
from p2pkit.testing.memory import channel_pair
from p2pkit.upgrader import Upgrader
from p2pkit_yamux import YamuxConnection, YamuxMuxer, YamuxOptions

KiB = 1024
QUIET = YamuxOptions(keepalive_interval=0, ping_on_start=False, close_timeout=1.0)
#: The connection may hold 1 MiB of unread data.
LIMITS = Limits(
    system=ScopeLimit(memory=64 << 20),
    ip=UNLIMITED,
    peer=UNLIMITED,
    conn=ScopeLimit(memory=1024 * KiB),
    stream=UNLIMITED,
)


async def until(condition: object, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():  # type: ignore[operator]
            await asyncio.sleep(0.005)


@pytest.fixture
async def sessions() -> AsyncIterator[
    tuple[YamuxConnection, YamuxConnection, ConnectionScope, ResourceManager]
]:
    rm = ResourceManager(LIMITS)
    scope = rm.open_connection("inbound", None)
    a, b = channel_pair()
    muxer = YamuxMuxer(QUIET)
    assert muxer.accepts_memory_scope
    client = muxer.new_session(a, is_initiator=True)  # type: ignore[arg-type]
    server = muxer.new_session(
        b,  # type: ignore[arg-type]
        is_initiator=False,
        memory=scope,
    )
    yield client, server, scope, rm
    client.abort()
    server.abort()
    scope.close()


async def test_refusal_resets_only_that_stream(
    sessions: tuple[YamuxConnection, YamuxConnection, ConnectionScope, ResourceManager],
) -> None:
    """Eight streams of 200 KiB each, never read: the connection may hold 1 MiB."""
    client, server, scope, rm = sessions
    sent = [await client.open_stream() for _ in range(8)]
    for s in sent:
        await s.write(bytes([s.stream_id]) * (200 * KiB))  # within the window: at once
    accepted = [await server.accept_stream() for _ in sent]
    await until(lambda: all(s._buf.size == 200 * KiB or s._error for s in accepted))
    kept = [s for s in accepted if s._error is None]
    refused = [s for s in accepted if s._error is not None]
    assert 2 <= len(kept) <= 5 and refused
    assert rm.refusals["conn.memory"] == len(refused)
    assert scope.scope.memory <= LIMITS.conn.memory  # type: ignore[operator]
    for s in refused:
        with pytest.raises(StreamResetByLimit) as info:
            await s.read()
        assert isinstance(info.value, StreamReset)  # the stream contract holds
        assert isinstance(info.value.__cause__, LimitExceeded)
        assert info.value.__cause__.limit == "conn.memory"
        # No traceback: it would keep the frames of the read that tripped the limit (and
        # all that read's data) alive as long as the stream's error.
        assert info.value.__cause__.__traceback__ is None
    victim = next(c for c in sent if c.stream_id == refused[0].stream_id)
    with pytest.raises(StreamReset):  # the peer got the RST
        async with asyncio.timeout(5):
            while True:
                await victim.write(b"x" * KiB)
                await asyncio.sleep(0.01)

    # The connection and the other streams are untouched.
    assert not server.is_closed and not client.is_closed
    for s in kept:
        assert await s.readexactly(200 * KiB) == bytes([s.stream_id]) * (200 * KiB)
    assert rm.system.memory <= IDLE_MAX
    again = await client.open_stream()
    await again.write(b"ok")
    s_again = await server.accept_stream()
    assert await s_again.readexactly(2) == b"ok"


async def test_reading_releases_and_ending_releases_all(
    sessions: tuple[YamuxConnection, YamuxConnection, ConnectionScope, ResourceManager],
) -> None:
    client, server, scope, rm = sessions
    streams = [await client.open_stream() for _ in range(2)]
    for s in streams:
        await s.write(b"z" * (150 * KiB))
    accepted = [await server.accept_stream() for _ in streams]
    await until(lambda: sum(s._buf.size for s in accepted) == 300 * KiB)
    assert 300 * KiB <= rm.system.memory <= 300 * KiB + 2 * HEADROOM
    # Read ahead and put back (as multistream negotiation does): the window credit went
    # back to the peer, so the bytes put back are counted again until read.
    ahead = await accepted[0].read()
    assert len(ahead) == 150 * KiB
    assert server._memory.held == 150 * KiB
    accepted[0].unread(ahead)
    assert server._memory.held == 300 * KiB and rm.system.memory >= 300 * KiB
    for s in accepted:
        assert await s.readexactly(150 * KiB) == b"z" * (150 * KiB)
    # Only the headroom stays reserved once everything is read.
    assert rm.system.memory <= IDLE_MAX
    # Buffered again, then the session ends: everything goes back.
    await streams[0].write(b"y" * (200 * KiB))
    await until(lambda: accepted[0]._buf.size == 200 * KiB)
    assert rm.system.memory >= 200 * KiB
    server.abort()
    assert scope.scope.memory == 0 and rm.system.memory == 0
    with pytest.raises(StreamReset):
        await accepted[0].read()
    scope.close()
    assert rm.system.empty and rm.tracked_scopes == 0


async def test_without_a_scope_nothing_is_refused() -> None:
    a, b = channel_pair()
    client = YamuxMuxer(QUIET).new_session(a, is_initiator=True)  # type: ignore[arg-type]
    server = YamuxMuxer(QUIET).new_session(
        b,
        is_initiator=False,  # type: ignore[arg-type]
    )
    try:
        streams = [await client.open_stream() for _ in range(4)]
        for s in streams:
            await s.write(b"n" * (256 * KiB))
        accepted = [await server.accept_stream() for _ in streams]
        for s in accepted:
            assert await s.readexactly(256 * KiB) == b"n" * (256 * KiB)
    finally:
        client.abort()
        server.abort()


class LegacyMuxer(StreamMuxer):
    """A third-party muxer written before the memory hook (no ``memory`` keyword)."""

    protocol_id = YamuxMuxer.protocol_id

    def new_session(self, conn, *, is_initiator):  # the old signature
        return YamuxMuxer(QUIET).new_session(conn, is_initiator=is_initiator)


@pytest.mark.parametrize("muxer", [YamuxMuxer(QUIET), LegacyMuxer()], ids=["hook", "legacy"])
async def test_upgrader_passes_the_scope_only_to_muxers_that_take_it(
    muxer: StreamMuxer,
) -> None:
    rm = ResourceManager(LIMITS)
    scope = rm.open_connection("inbound", None)
    a, b = channel_pair()
    keys = [generate_private_key("ed25519") for _ in range(2)]
    client_up = Upgrader([PlaintextSecurity(keys[0])], [YamuxMuxer(QUIET)], timeout=5)
    server_up = Upgrader([PlaintextSecurity(keys[1])], [muxer], timeout=5)
    client, server = await asyncio.gather(
        client_up.upgrade_outbound(a, None), server_up.upgrade_inbound(b, memory=scope)
    )
    try:
        stream = await client.muxed.open_stream()
        await stream.write(b"q" * (100 * KiB))
        accepted = await server.muxed.accept_stream()
        await until(lambda: accepted._buf.size == 100 * KiB)
        accounted = muxer.accepts_memory_scope
        assert (rm.system.memory >= 100 * KiB) is accounted
        assert (rm.system.memory == 0) is not accounted
        assert await accepted.readexactly(100 * KiB) == b"q" * (100 * KiB)
    finally:
        client.muxed.abort()
        server.muxed.abort()
        scope.close()
    assert rm.system.memory == 0


async def test_host_reserves_per_peer_and_releases_on_disconnect() -> None:
    """Real hosts over loopback TCP (Noise + yamux): the swarm hands the connection scope
    to the muxer; a peer's parked data hits ``max_memory_per_peer``, which resets only the
    streams that did not fit; when the peer goes, the system scope returns to 0."""
    from p2pkit.config import HostBuilder

    parked = asyncio.Event()

    async def park(stream: MuxedStream) -> None:  # never reads
        await parked.wait()

    server = (
        HostBuilder()
        .listen("/ip4/127.0.0.1/tcp/0")
        .security("noise")
        .muxer("yamux")
        .limits(max_memory_per_peer=1 << 20)
        .build()
    )
    client = HostBuilder().security("noise").muxer("yamux").build()
    server.set_stream_handler("/park/1", park)
    async with server, client, asyncio.timeout(30):
        rm = server.swarm.rcmgr
        conn = await client.connect(server.addrs_with_peer_id[0])
        streams = [await conn.new_stream(["/park/1"]) for _ in range(8)]
        for s in streams:
            await s.write(b"p" * (200 * KiB))  # within the window: returns at once
        await until(lambda: rm.refusals["peer.memory"] > 0)
        assert rm.system.memory <= 1 << 20
        assert not conn.is_closed
        await client.disconnect(conn.peer)
        await until(lambda: rm.system.memory == 0 and rm.tracked_scopes == 0)
        parked.set()


@pytest.mark.parametrize("who", ["peer", "local"])
async def test_resetting_buffered_streams_releases_the_reservation(
    sessions: tuple[YamuxConnection, YamuxConnection, ConnectionScope, ResourceManager],
    who: str,
) -> None:
    """Streams filled and then reset used to leave their memory reserved (held 0,
    reserved as before) until the connection ended: other peers were refused."""
    client, server, _scope, rm = sessions
    streams = [await client.open_stream() for _ in range(3)]
    for s in streams:
        await s.write(b"z" * (200 * KiB))
    accepted = [await server.accept_stream() for _ in streams]
    await until(lambda: sum(s._buf.size for s in accepted) == 600 * KiB)
    assert rm.system.memory >= 600 * KiB
    for sent, got in zip(streams, accepted, strict=True):
        (sent if who == "peer" else got).reset()
    await until(lambda: not server.streams)
    assert server._memory.held == 0
    assert rm.system.memory <= IDLE_MAX and not server.is_closed


async def test_stream_tables_a_burst_grew_shrink_once_it_is_over(
    sessions: tuple[YamuxConnection, YamuxConnection, ConnectionScope, ResourceManager],
) -> None:
    """64 streams at once, then all but one end: the shell's stream table and accept
    queue and the session's stream states kept tables for 64 (1-2 KiB each, per side)
    for the connection's life (p2pkit.tables)."""
    client, server, _scope, _rm = sessions
    first = await client.open_stream()
    await first.write(b"0")
    kept = await server.accept_stream()  # its ACK lifts the early-SYN bound
    sent = [await client.open_stream() for _ in range(63)]
    for s in sent:
        await s.write(b"x")
    await until(lambda: len(server._accept_queue) == 63)
    accepted = [await server.accept_stream() for _ in sent]

    def tables(side: YamuxConnection) -> list[object]:
        return [side._streams, side._accept_queue, side.session.streams]

    assert sys.getsizeof(server._accept_queue) > OVERSIZED  # (grown, now empty)
    for side in (client, server):
        assert sys.getsizeof(side._streams) > OVERSIZED
    for a, b in zip(sent, accepted, strict=True):
        assert await b.readexactly(1) == b"x"
        await a.close()
        await b.close()
    await until(lambda: len(server._streams) == len(client._streams) == 1)
    for side in (client, server):
        assert len(side.session.streams) == 1
        for table in tables(side):
            assert sys.getsizeof(table) < EMPTY_OVERSIZED, table
    # The stream left, and new ones, still work.
    await first.write(b"1")
    assert await kept.readexactly(2) == b"01"
    again = await client.open_stream()
    await again.write(b"new")
    assert await (await server.accept_stream()).readexactly(3) == b"new"
