"""mplex reserves what a peer makes it buffer in the connection's memory scope.

mplex has no flow control, so this is what bounds a peer that opens many streams and
sends on each without the application reading: a refused reservation resets the stream
the data came on, and only that stream.  Real sessions over real loopback TCP.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Callable
from typing import cast

import pytest

from p2pkit.abc import SecureConnection
from p2pkit.errors import StreamReset, StreamResetByLimit
from p2pkit.limits import UNLIMITED, LimitExceeded, Limits, ScopeLimit
from p2pkit.rcmgr import ConnectionScope, ResourceManager
from p2pkit.reservation import IDLE_MAX
from p2pkit.tables import EMPTY_OVERSIZED, OVERSIZED
from p2pkit.testing.memory import tcp_channel_pair
from p2pkit_mplex import MplexConnection, MplexMuxer, MplexStream

KiB = 1024
LIMITS = Limits(
    system=ScopeLimit(memory=64 << 20),
    ip=UNLIMITED,
    peer=ScopeLimit(memory=1024 * KiB),
    conn=UNLIMITED,
    stream=UNLIMITED,
)

Pair = tuple[MplexConnection, MplexConnection, ConnectionScope, ResourceManager]


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.005)


@pytest.fixture
async def sessions() -> AsyncIterator[Pair]:
    rm = ResourceManager(LIMITS)
    scope = rm.open_connection("inbound", None)
    a, b = await tcp_channel_pair()
    client = MplexMuxer().new_session(cast(SecureConnection, a), is_initiator=True)
    server = MplexMuxer().new_session(cast(SecureConnection, b), is_initiator=False, memory=scope)
    yield client, server, scope, rm
    client.abort()
    server.abort()
    scope.close()


async def test_parked_streams_are_reset_beyond_the_limit(sessions: Pair) -> None:
    """Ten streams of 200 KiB each, never read: about five fit in 1 MiB."""
    client, server, scope, rm = sessions
    from p2pkit.crypto import generate_private_key
    from p2pkit.peer import PeerId

    scope.set_peer(PeerId.from_public_key(generate_private_key("ed25519").public_key))
    sent = [await client.open_stream() for _ in range(10)]
    for s in sent:
        await s.write(bytes([s.stream_id % 256]) * (200 * KiB))
    accepted = [cast(MplexStream, await server.accept_stream()) for _ in sent]
    await until(lambda: all(s._buf.size == 200 * KiB or s._error for s in accepted))
    refused = [s for s in accepted if s._error is not None]
    kept = [s for s in accepted if s._error is None]
    assert 2 <= len(kept) <= 5 and len(refused) == 10 - len(kept)
    assert rm.refusals["peer.memory"] == len(refused)
    assert scope.peer is not None and scope.peer.memory <= 1024 * KiB
    for s in refused:
        with pytest.raises(StreamResetByLimit) as info:
            await s.read()
        assert isinstance(info.value, StreamReset)
        assert isinstance(info.value.__cause__, LimitExceeded)
        assert info.value.__cause__.__traceback__ is None  # keeps no read's frames alive
    # The kept streams deliver everything; the session is still open.
    for s in kept:
        assert await s.readexactly(200 * KiB) == bytes([s.stream_id % 256]) * (200 * KiB)
    assert not server.is_closed
    assert rm.system.memory <= IDLE_MAX
    # The peer saw the resets: writing on a refused stream fails there.
    ids = {s.stream_id for s in refused}
    victim = next(s for s in sent if s.stream_id in ids)
    with pytest.raises(StreamReset):
        async with asyncio.timeout(5):
            while True:
                await victim.write(b"x")
                await asyncio.sleep(0.01)


async def test_session_end_releases_everything(sessions: Pair) -> None:
    client, server, scope, rm = sessions
    stream = await client.open_stream()
    await stream.write(b"m" * (300 * KiB))
    accepted = cast(MplexStream, await server.accept_stream())
    await until(lambda: accepted._buf.size == 300 * KiB)
    assert rm.system.memory >= 300 * KiB
    part = await accepted.readexactly(100 * KiB)
    assert server._memory.held == 200 * KiB
    accepted.unread(part)  # put back (as negotiation does): held, so counted again
    assert server._memory.held == 300 * KiB and rm.system.memory >= 300 * KiB
    await accepted.close()  # discards what is buffered
    assert rm.system.memory <= IDLE_MAX
    await stream.write(b"n" * (100 * KiB))
    second = await client.open_stream()
    await second.write(b"o" * (100 * KiB))
    got = cast(MplexStream, await server.accept_stream())
    await until(lambda: got._buf.size == 100 * KiB)
    server.abort()
    assert scope.scope.memory == 0 and rm.system.memory == 0
    scope.close()
    assert rm.system.empty and rm.tracked_scopes == 0


@pytest.mark.parametrize("who", ["peer", "local"])
async def test_resetting_buffered_streams_releases_the_reservation(
    sessions: Pair, who: str
) -> None:
    """Streams filled and then reset used to leave their memory reserved (held 0,
    reserved as before) until the connection ended: other peers were refused."""
    client, server, _scope, rm = sessions
    sent = [await client.open_stream() for _ in range(3)]
    for s in sent:
        await s.write(b"z" * (200 * KiB))
    accepted = [cast(MplexStream, await server.accept_stream()) for _ in sent]
    await until(lambda: sum(s._buf.size for s in accepted) == 600 * KiB)
    assert rm.system.memory >= 600 * KiB
    for mine, theirs in zip(sent, accepted, strict=True):
        (mine if who == "peer" else theirs).reset()
    await until(lambda: not server.streams)
    assert server._memory.held == 0  # type: ignore[attr-defined]
    assert rm.system.memory <= IDLE_MAX and not server.is_closed


async def test_stream_tables_a_burst_grew_shrink_once_it_is_over(sessions: Pair) -> None:
    """64 streams at once, then all but one end: the shell's stream table and backlog
    and the session's stream table kept tables for 64 (1-2 KiB each, per side) for the
    connection's life (p2pkit.tables)."""
    client, server, _scope, _rm = sessions
    first = await client.open_stream()
    await first.write(b"0")
    kept = await server.accept_stream()
    await kept.write(b"0")  # the first frame heard lifts the early-stream bound
    assert await first.readexactly(1) == b"0"
    sent = [cast(MplexStream, await client.open_stream()) for _ in range(63)]
    for s in sent:
        await s.write(b"x")
    await until(lambda: len(server._backlog) == 63)
    accepted = [cast(MplexStream, await server.accept_stream()) for _ in sent]

    def tables(side: MplexConnection) -> list[object]:
        return [side._streams, side._backlog, side._session._streams]

    assert sys.getsizeof(server._backlog) > OVERSIZED  # (grown, now empty)
    for side in (client, server):
        assert sys.getsizeof(side._streams) > OVERSIZED
    for a, b in zip(sent, accepted, strict=True):
        assert await b.readexactly(1) == b"x"
        await a.close()
        await b.close()
    await until(lambda: len(server._streams) == len(client._streams) == 1)
    for side in (client, server):
        assert len(side._session._streams) == 1
        for table in tables(side):
            assert sys.getsizeof(table) < EMPTY_OVERSIZED, table
    # The stream left, and new ones, still work.
    await first.write(b"1")
    assert await kept.readexactly(2) == b"01"
    again = await client.open_stream()
    await again.write(b"new")
    assert await (await server.accept_stream()).readexactly(3) == b"new"
