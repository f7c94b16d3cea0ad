"""A peer that sends yamux GoAway(0) and keeps its socket open (hashicorp yamux's
``Session.GoAway()`` does exactly this): its connection must not stay in the table for
good, handed out to every ``connect`` while each ``new_stream`` on it fails.  The
connection drains: streams already open finish, the connection is closed, and the next
dial makes a new one.  The GoAway frame is written raw on the secured channel, so the
sending host's own yamux session does not know it said goodbye (it keeps the socket)."""

from __future__ import annotations

import asyncio
import os
import struct

from p2pkit.protocols.echo import PROTOCOL_ID as ECHO
from p2pkit.protocols.ping import PROTOCOL_ID as PING
from p2pkit.protocols.ping import ping

GO_AWAY_NORMAL = struct.pack(">BBHII", 0, 3, 0, 0, 0)  # version, type 3, flags, id, code 0


async def _wait_for(predicate, seconds: float = 5.0) -> None:
    async with asyncio.timeout(seconds):
        while not predicate():
            await asyncio.sleep(0.01)


async def test_goaway_with_the_socket_left_open_ends_the_connection(make_host):
    a = await make_host(muxer="yamux")
    b = await make_host(muxer="yamux", listen=False)
    first = await b.connect(a.addrs_with_peer_id[0])
    (served,) = a.connections(b.peer_id)
    assert served.secure is not None
    served.secure.write_nowait(GO_AWAY_NORMAL)

    # b stops handing the connection out at once and closes it (no stream was open).
    await _wait_for(lambda: first.is_closed)
    assert first not in b.connections(a.peer_id)
    await _wait_for(lambda: not a.connections(b.peer_id))

    second = await b.connect(a.addrs_with_peer_id[0])
    assert second is not first
    assert len(await ping(await second.new_stream(PING), 2)) == 2


async def test_goaway_lets_open_streams_finish(make_host):
    a = await make_host(muxer="yamux")
    b = await make_host(muxer="yamux", listen=False)
    conn = await b.connect(a.addrs_with_peer_id[0])
    stream = await conn.new_stream(ECHO)
    first_half = os.urandom(50_000)
    await stream.write(first_half)
    (served,) = a.connections(b.peer_id)
    served.secure.write_nowait(GO_AWAY_NORMAL)
    await _wait_for(lambda: conn.draining)
    assert b.connections(a.peer_id) == []  # no longer handed out...
    assert not conn.is_closed  # ...but alive while its stream runs

    second_half = os.urandom(50_000)
    await stream.write(second_half)
    await stream.close_write()
    got = b""
    async with asyncio.timeout(5):
        while chunk := await stream.read():
            got += chunk
    assert got == first_half + second_half
    await _wait_for(lambda: conn.is_closed)
