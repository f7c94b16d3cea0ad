"""Resource limits that QUIC enforces in its own protocol: the inbound stream limit is
the peer's QUIC stream credit (MAX_STREAMS), so a peer at the limit waits instead of
being reset; QUIC handshakes in progress count as pending inbound connections."""

from __future__ import annotations

import asyncio

from p2pkit.host import Host

HOLD = "/hold/1"


def _quic(host: Host):  # type: ignore[no-untyped-def]
    return next(t for t in host.swarm.transports if t.name == "quic")


async def test_stream_limit_is_the_quic_stream_credit(make_host):
    """limit 4: the peer's 5th concurrent stream waits, blocked by QUIC (nothing is
    reset), and opens as soon as one of the four ends; the credit comes back stream by
    stream, so it bounds *concurrent* streams (three rounds of 4 + 1)."""
    a = await make_host(limits={"max_inbound_streams_per_conn": 4})
    assert _quic(a).options.max_streams == 4  # was 256: lowered by the spec's hook
    running: list[int] = []
    peak = 0

    async def hold(stream) -> None:  # answers "done" once the dialer closed its side
        nonlocal peak
        running.append(1)
        peak = max(peak, len(running))
        try:
            while await stream.read():
                pass
            await stream.write(b"done")
            await stream.close()
        finally:
            running.pop()

    a.set_stream_handler(HOLD, hold)
    b = await make_host(listen=False)
    conn = await b.connect(a.addrs_with_peer_id[0])
    quic = conn.muxed.quic  # the dialer's aioquic machine

    async def end(stream) -> None:
        await stream.close_write()
        assert await stream.read() == b"done"

    async with asyncio.timeout(10):
        held = [await conn.new_stream(HOLD) for _ in range(4)]
        for s in held:
            await s.write(b"x")
        for _ in range(3):
            fifth = asyncio.ensure_future(conn.new_stream(HOLD))
            while not quic._streams_blocked_bidi:  # QUIC holds its first bytes back
                await asyncio.sleep(0.005)
            assert not fifth.done()
            assert len(held) == 4 and len(running) <= 4
            await end(held.pop(0))
            held.append(await fifth)  # the credit of the stream that ended
            await held[-1].write(b"x")
        for s in held:
            await end(s)
    assert peak <= 4
    assert not a.swarm.rcmgr.refusals  # the swarm never had to reset a stream
    assert not quic._streams_blocked_bidi

