"""Streams at the edge of the peer's MAX_STREAMS, streams reset before any data, and a
close with streams left open (found against quic-go: tests/interop/test_go.py).

* A stream of ours waiting for the peer's credit was never on the wire: resetting it
  used to send RESET_STREAM and STOP_SENDING for a stream the peer had not allowed,
  and the peer closed the whole connection (aioquic: STREAM_LIMIT_ERROR, quic-go:
  STREAM_STATE_ERROR).  The reset now waits until the peer allows the stream.
* A stream the peer opens and resets before any of its data arrives (go's CancelWrite
  on a new stream) used to keep one of the peer's MAX_STREAMS slots for good: after
  that many, the peer could open no stream on a connection still up.
* ``close()`` with a stream left open waited without end; it is bounded by
  ``close_timeout`` as yamux's is.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from p2pkit.errors import ConnectionClosed, StreamReset

from .conftest import quic_pair


async def test_resetting_a_stream_beyond_the_peers_limit_keeps_the_connection(
    transports: Any,
) -> None:
    client, server = await quic_pair(transports(max_streams=1), transports())  # (server, client)
    first = await client.muxed.open_stream()
    await first.write(b"one")
    accepted = await asyncio.wait_for(server.muxed.accept_stream(), 5)
    assert await accepted.read() == b"one"
    second = await client.muxed.open_stream()  # beyond the peer's MAX_STREAMS: held
    await second.write(b"two")
    await asyncio.sleep(0.1)
    second.reset()
    await asyncio.sleep(0.3)
    assert not client.muxed.is_closed and not server.muxed.is_closed
    await first.write(b" more")  # the connection still carries the first stream
    assert await asyncio.wait_for(accepted.read(), 5) == b" more"
    # Once the peer allows another stream, the held reset goes out (RESET_STREAM and
    # STOP_SENDING, none of its data: the peer's application never sees that stream),
    # and a new one of ours goes through.
    await first.close()
    await accepted.close()
    third = await client.muxed.open_stream()
    await third.write(b"three")
    accepted3 = await asyncio.wait_for(server.muxed.accept_stream(), 5)
    assert accepted3.stream_id == third.stream_id == second.stream_id + 4
    assert await asyncio.wait_for(accepted3.read(5), 5) == b"three"
    client.muxed.abort()
    server.muxed.abort()


async def test_streams_reset_before_any_data_give_their_slots_back(transports: Any) -> None:
    client, server = await quic_pair(transports(max_streams=8), transports())
    quic = client.muxed.quic
    for _ in range(40):  # 5 times the limit, each opened and reset with no data
        sid = quic.get_next_available_stream_id()
        quic.send_stream_data(sid, b"")
        quic.reset_stream(sid, 7)
        client.muxed.schedule_transmit()
        await asyncio.sleep(0.01)
    live = await asyncio.wait_for(client.muxed.open_stream(), 5)
    await live.write(b"still")
    async with asyncio.timeout(5):
        while True:  # the reset streams may be accepted (and fail) before it
            stream = await server.muxed.accept_stream()
            try:
                if await stream.read(5) == b"still":
                    break
            except StreamReset:
                continue
    assert len(server.muxed.quic._streams) <= 2
    client.muxed.abort()
    server.muxed.abort()


async def test_close_with_a_stream_left_open_is_bounded(transports: Any) -> None:
    client, server = await quic_pair(transports(), transports(close_timeout=0.5))
    stream = await client.muxed.open_stream()
    await stream.write(b"never finished")
    await asyncio.wait_for(server.muxed.accept_stream(), 5)
    start = time.monotonic()
    await asyncio.wait_for(client.muxed.close(), 5)
    assert 0.4 < time.monotonic() - start < 3
    assert client.muxed.is_closed
    with pytest.raises(ConnectionClosed):
        await stream.read()
    server.muxed.abort()


async def test_concurrent_closes_both_return_with_the_close(transports: Any) -> None:
    """The swarm closes a connection whose accept loop ended while the application's
    own close may still be running: two ``close()`` calls at once.  Both waited for
    acknowledgements through one future slot, and the caller whose future was replaced
    hung until ``close_timeout``."""
    client, server = await quic_pair(transports(), transports())
    stream = await client.muxed.open_stream()
    await stream.write(b"x" * 200_000)  # acknowledged only after a few round trips
    await stream.close_write()
    accepted = await asyncio.wait_for(server.muxed.accept_stream(), 5)
    await accepted.close_write()
    assert await asyncio.wait_for(stream.read(), 5) == b""  # closed both ways
    start = time.monotonic()
    await asyncio.wait_for(asyncio.gather(*(client.muxed.close() for _ in range(3))), 10)
    assert time.monotonic() - start < 2.5  # close_timeout is 5 s
    assert client.muxed.is_closed
    server.muxed.abort()
