"""Stream bytes aioquic holds out of order are reserved in the resource manager.

A peer that withholds a stream's first byte makes the listener hold everything after
it (aioquic delivers in order only, and zero-fills the gaps). The dialer here does that
through its own aioquic sender: the byte range [0, 1) is taken out of what is pending,
so it never leaves until put back.
"""

from __future__ import annotations

import asyncio
from typing import Any

from p2pkit.host import Host
from p2pkit.multistream.messages import HEADER, encode_message

HOARD = "/hoard/1"


def _withhold_first_byte(conn: Any, data: bytes) -> int:
    """Send ``data`` on a new stream of ``conn`` (a QUIC connection), all but byte 0."""
    session = conn.muxed
    quic = session.quic
    sid = quic.get_next_available_stream_id()
    quic.send_stream_data(sid, data)
    quic._streams[sid].sender._pending.subtract(0, 1)
    session.schedule_transmit()
    return int(sid)


def _listener_session(a: Host, b: Host) -> Any:
    (conn,) = a.connections(b.peer_id)
    return conn.muxed


async def test_out_of_order_bytes_are_reserved_then_released(make_host):
    """256 KiB held behind a missing first byte are reserved on the listener; once the
    byte arrives everything is delivered in order and the reservation follows."""
    a = await make_host(limits={"unlimited_networks": []})
    got: list[bytes] = []

    async def hoard(stream: Any) -> None:
        data = b""
        while chunk := await stream.read():
            data += chunk
        got.append(data)

    a.set_stream_handler(HOARD, hoard)
    b = await make_host(listen=False)
    conn = await b.connect(a.addrs_with_peer_id[0])
    data = bytes(range(256)) * 1024  # 256 KiB after the (optimistic) protocol choice
    payload = HEADER + encode_message(HOARD) + data
    sid = _withhold_first_byte(conn, payload)
    server = _listener_session(a, b)
    async with asyncio.timeout(10):
        while server.out_of_order < len(payload):  # byte 0 too: zero-filled, held
            await asyncio.sleep(0.01)
    assert server.memory.held >= server.out_of_order  # reserved, counted in the scope
    assert not got
    quic = conn.muxed.quic
    quic._streams[sid].sender._pending.add(0, 1)  # the byte leaves at last
    quic.send_stream_data(sid, b"", end_stream=True)
    conn.muxed.schedule_transmit()
    async with asyncio.timeout(10):
        while not got:
            await asyncio.sleep(0.01)
    assert got == [data]
    assert server.out_of_order == 0
    async with asyncio.timeout(10):
        while server.memory.held:
            await asyncio.sleep(0.01)


async def test_a_peer_withholding_a_first_byte_is_cut_by_the_memory_limit(make_host):
    """3 MiB held behind a missing first byte cross max_memory_per_peer (1 MiB): the
    listener aborts that connection; it serves another peer as before."""
    a = await make_host(limits={"max_memory_per_peer": 1 << 20, "unlimited_networks": []})
    b = await make_host(listen=False)
    conn = await b.connect(a.addrs_with_peer_id[0])
    _withhold_first_byte(conn, b"x" * (3 << 20))
    async with asyncio.timeout(10):
        await conn.muxed.wait_closed()
        while a.connections(b.peer_id):
            await asyncio.sleep(0.01)
    assert any("memory" in key for key in a.swarm.rcmgr.refusals), a.swarm.rcmgr.refusals
    c = await make_host(listen=False)
    other = await c.connect(a.addrs_with_peer_id[0])
    assert not other.is_closed
