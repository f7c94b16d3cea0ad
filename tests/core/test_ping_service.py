"""The ping handler against peers that misuse it: at most two streams per peer (ping.md:
"SHOULD accept at most two streams per peer", as js-libp2p), and a peer that sends pings
but never reads the answers does not park the handler (the idle bound covers the write
too, as go's handler timer)."""

from __future__ import annotations

import asyncio
import contextlib
import os

import pytest

from p2pkit.errors import StreamReset
from p2pkit.protocols import ping as ping_module
from p2pkit.protocols.ping import MAX_STREAMS_PER_PEER, PROTOCOL_ID, ping


async def test_at_most_two_ping_streams_per_peer(make_host) -> None:
    a = await make_host(transport="tcp")
    b = await make_host(transport="tcp", listen=False)
    conn = await b.connect(a.addrs_with_peer_id[0])
    held = [await conn.new_stream(PROTOCOL_ID) for _ in range(MAX_STREAMS_PER_PEER)]
    for s in held:  # both served
        await s.write(bytes(32))
        assert await asyncio.wait_for(s.readexactly(32), 5) == bytes(32)
    with pytest.raises(StreamReset):  # a third, while both are open: reset
        async with asyncio.timeout(5):
            extra = await conn.new_stream(PROTOCOL_ID)  # (reset may come during this)
            await extra.write(bytes(32))
            await extra.readexactly(32)
    await held[0].close()  # one ends: its place is free
    async with asyncio.timeout(5):
        while True:
            try:
                assert len(await ping(await conn.new_stream(PROTOCOL_ID), 2)) == 2
                break
            except StreamReset:  # the first handler may not have seen our FIN yet
                await asyncio.sleep(0.05)


async def test_a_peer_that_never_reads_the_answers_is_cut_off(make_host, monkeypatch) -> None:
    monkeypatch.setattr(ping_module, "IDLE_TIMEOUT", 0.3)
    a = await make_host(transport="tcp")
    b = await make_host(transport="tcp", listen=False)
    conn = await b.connect(a.addrs_with_peer_id[0])
    stream = await conn.new_stream(PROTOCOL_ID)

    async def flood() -> None:  # 2 MiB of pings, never reading the answers
        for _ in range(64):
            await stream.write(os.urandom(32) * 1024)

    writer = asyncio.create_task(flood())
    await asyncio.sleep(1.5)  # the echo blocked on its window for more than IDLE_TIMEOUT
    # The handler ended while we read nothing (it used to wait on its write for good).
    assert not a.router.handled
    with pytest.raises(StreamReset):
        async with asyncio.timeout(10):
            while True:  # reading the answers now: they end with the reset
                await stream.read(65536)
    writer.cancel()
    with contextlib.suppress(asyncio.CancelledError, StreamReset):
        await writer
