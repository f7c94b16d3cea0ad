"""The asyncio shell over in-process channels (real Channel contract, no sockets)."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator
from typing import cast

import pytest

from p2pkit.abc import RawConnection, SecureConnection
from p2pkit.errors import ConnectionClosed, StreamClosed, StreamReset
from p2pkit.testing.memory import channel_pair, tcp_channel_pair
from p2pkit_mplex import Flag, MplexConnection, MplexMuxer, MplexOptions, encode_frame

MiB = 1 << 20


def secure(conn: RawConnection) -> SecureConnection:
    """The shell only uses the Channel part of SecureConnection."""
    return cast(SecureConnection, conn)


async def make_pair(kind: str) -> tuple[RawConnection, RawConnection]:
    return await tcp_channel_pair() if kind == "tcp" else channel_pair()


@pytest.fixture(params=["memory", "tcp"])
async def sessions(
    request: pytest.FixtureRequest,
) -> AsyncIterator[tuple[MplexConnection, MplexConnection]]:
    a, b = await make_pair(request.param)
    muxer = MplexMuxer()
    sa = muxer.new_session(secure(a), is_initiator=True)
    sb = muxer.new_session(secure(b), is_initiator=False)
    yield sa, sb
    await sa.close()
    await sb.close()


async def test_open_accept_echo_half_close(
    sessions: tuple[MplexConnection, MplexConnection],
) -> None:
    sa, sb = sessions
    s1 = await sa.open_stream()
    await s1.write(b"hello")
    await s1.close_write()
    r1 = await asyncio.wait_for(sb.accept_stream(), 5)
    assert r1.stream_id == s1.stream_id == 0
    assert not r1.is_initiator and s1.is_initiator
    assert await r1.readexactly(5) == b"hello"
    assert await r1.read() == b""
    with pytest.raises(StreamClosed):
        await s1.write(b"more")
    await r1.write(b"world")  # the other direction stays open
    await r1.close_write()
    assert await s1.readexactly(5) == b"world"
    assert await s1.read() == b""
    await asyncio.sleep(0.01)
    assert sa.streams == [] and sb.streams == []


async def test_both_open_id_0_concurrently(
    sessions: tuple[MplexConnection, MplexConnection],
) -> None:
    sa, sb = sessions
    xa, xb = await asyncio.gather(sa.open_stream(), sb.open_stream())
    ya, yb = await asyncio.gather(sb.accept_stream(), sa.accept_stream())
    assert xa.stream_id == xb.stream_id == ya.stream_id == yb.stream_id == 0
    await xa.write(b"a->b on a's stream")
    await xb.write(b"b->a on b's stream")
    await ya.write(b"b->a on a's stream")
    await yb.write(b"a->b on b's stream")
    assert await ya.readexactly(18) == b"a->b on a's stream"
    assert await yb.readexactly(18) == b"b->a on b's stream"
    assert await xa.readexactly(18) == b"b->a on a's stream"
    assert await xb.readexactly(18) == b"a->b on b's stream"


async def test_large_transfer_many_streams(
    sessions: tuple[MplexConnection, MplexConnection],
) -> None:
    sa, sb = sessions
    payload = bytes(range(256)) * (12 * 1024)  # 3 MiB: split into 1 MiB messages
    digest = hashlib.sha256(payload).digest()

    async def send() -> None:
        s = await sa.open_stream()
        await s.write(payload)
        await s.write(bytearray(b"tail"))
        await s.close_write()
        assert await s.read() == b""

    async def receive() -> None:
        r = await sb.accept_stream()
        got = bytearray()
        while chunk := await r.read(65536):
            got += chunk
        assert hashlib.sha256(got[:-4]).digest() == digest and got[-4:] == b"tail"
        await r.close()

    await asyncio.wait_for(
        asyncio.gather(*(send() for _ in range(4)), *(receive() for _ in range(4))), 30
    )


async def test_remote_reset_and_local_reset(
    sessions: tuple[MplexConnection, MplexConnection],
) -> None:
    sa, sb = sessions
    s = await sa.open_stream()
    await s.write(b"x")
    r = await sb.accept_stream()
    reader = asyncio.create_task(r.read(10))
    assert await reader == b"x"
    pending = asyncio.create_task(r.read())
    await asyncio.sleep(0)
    s.reset()
    s.reset()  # idempotent
    with pytest.raises(StreamReset):
        await asyncio.wait_for(pending, 5)
    with pytest.raises(StreamReset):
        await r.write(b"y")
    with pytest.raises(StreamReset):
        await s.read()
    with pytest.raises(StreamReset):
        await s.write(b"z")


@pytest.mark.parametrize("kind", ["memory", "tcp"])
async def test_slow_reader_is_reset_other_streams_unaffected(kind: str) -> None:
    """No flow control: past max_stream_buffer, with no grace period, the receiver
    resets the stream at once."""
    a, b = await make_pair(kind)
    opts = MplexOptions(max_stream_buffer=2 * MiB, slow_reader_timeout=0)
    sa = MplexMuxer(opts).new_session(secure(a), is_initiator=True)
    sb = MplexMuxer(opts).new_session(secure(b), is_initiator=False)
    slow = await sa.open_stream()
    fast = await sa.open_stream()
    r_slow = await sb.accept_stream()
    r_fast = await sb.accept_stream()
    chunk = bytes(256 * 1024)
    with pytest.raises(StreamReset):
        for _ in range(64):  # 16 MiB at most; the reset arrives long before
            await slow.write(chunk)
            await asyncio.sleep(0)
    with pytest.raises(StreamReset):
        await r_slow.read()
    # The session and the other stream carry on.
    await fast.write(b"still fine")
    assert await r_fast.readexactly(10) == b"still fine"
    assert not sa.is_closed and not sb.is_closed
    await sa.close()
    await sb.close()


@pytest.mark.parametrize("kind", ["memory", "tcp"])
async def test_slow_reader_pauses_then_reset_after_timeout(kind: str) -> None:
    """Over the bound the connection stops reading (the writer is slowed down by the
    channel); a reader that catches up in time keeps its stream, one that does not is
    reset after slow_reader_timeout, and reading resumes for the other streams."""
    a, b = await make_pair(kind)
    opts = MplexOptions(max_stream_buffer=MiB, slow_reader_timeout=0.3)
    sa = MplexMuxer(opts).new_session(secure(a), is_initiator=True)
    sb = MplexMuxer(opts).new_session(secure(b), is_initiator=False)
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(20):
            # 1) the reader is late but catches up before the timeout: nothing is lost
            s = await sa.open_stream()
            payload = os.urandom(32 * MiB)  # more than loopback socket buffers hold
            writer = asyncio.create_task(s.write(payload))
            r = await sb.accept_stream()
            await asyncio.sleep(0.1)  # over the bound: b paused reading
            assert not writer.done()  # the writer is held back by the channel
            got = bytearray()
            while len(got) < len(payload):
                got += await r.read()
            assert got == payload
            await writer

            # 2) the reader stops for longer than the timeout: its stream is reset
            slow = await sa.open_stream()
            other = await sa.open_stream()
            r_slow = await sb.accept_stream()
            r_other = await sb.accept_stream()
            start = loop.time()
            chunk = bytes(256 * 1024)
            with pytest.raises(StreamReset):
                # 64 MiB at most: more than loopback socket buffers and the channel's
                # high-water mark can absorb (about 12 MiB here), so the writer blocks
                # until the reset comes back (16 MiB was sometimes all absorbed).
                for _ in range(256):
                    await slow.write(chunk)
                    await asyncio.sleep(0)
            assert loop.time() - start >= 0.25
            with pytest.raises(StreamReset):
                await r_slow.read()
            await other.write(b"after")
            assert await r_other.readexactly(5) == b"after"
    finally:
        sa.abort()
        sb.abort()
        await sa.wait_closed()
        await sb.wait_closed()


@pytest.mark.parametrize("kind", ["memory", "tcp"])
async def test_reader_within_bound_is_not_reset(kind: str) -> None:
    a, b = await make_pair(kind)
    opts = MplexOptions(max_stream_buffer=2 * MiB)
    sa = MplexMuxer(opts).new_session(secure(a), is_initiator=True)
    sb = MplexMuxer(opts).new_session(secure(b), is_initiator=False)
    s = await sa.open_stream()
    await s.write(bytes(2 * MiB))  # exactly the bound, nobody reads yet
    await s.close_write()
    r = await sb.accept_stream()
    await asyncio.sleep(0.05)
    got = 0
    while chunk := await r.read():
        got += len(chunk)
    assert got == 2 * MiB
    await sa.close()
    await sb.close()


async def test_close_session_ends_accept_and_remote_sees_eof(
    sessions: tuple[MplexConnection, MplexConnection],
) -> None:
    sa, sb = sessions
    s = await sa.open_stream()
    await s.write(b"bye")
    r = await sb.accept_stream()
    acceptor = asyncio.create_task(sa.accept_stream())
    await asyncio.sleep(0)
    await asyncio.wait_for(sa.close(), 5)
    assert sa.is_closed
    with pytest.raises(ConnectionClosed):
        await asyncio.wait_for(acceptor, 5)
    with pytest.raises(ConnectionClosed):
        await sa.open_stream()
    # The remote reads the data, then EOF; its session ends too (bare EOF).
    assert await asyncio.wait_for(r.readexactly(3), 5) == b"bye"
    assert await asyncio.wait_for(r.read(), 5) == b""
    await asyncio.wait_for(sb.wait_closed(), 5)
    with pytest.raises(ConnectionClosed):
        await sb.accept_stream()


async def test_abort_resets_streams(
    sessions: tuple[MplexConnection, MplexConnection],
) -> None:
    sa, sb = sessions
    s = await sa.open_stream()
    r = await sb.accept_stream()
    sa.abort(RuntimeError("boom"))
    sa.abort()  # idempotent
    with pytest.raises(StreamReset):
        await s.read()
    with pytest.raises((StreamReset, ConnectionClosed)):
        await asyncio.wait_for(r.read(), 5)
    await asyncio.wait_for(sb.wait_closed(), 5)


# -- against a raw peer that writes frames by hand ---------------------------------------


async def test_protocol_error_from_raw_peer_aborts() -> None:
    a, raw = channel_pair()
    sa = MplexMuxer().new_session(secure(a), is_initiator=True)
    await raw.write(encode_frame(0, Flag.NEW_STREAM, b"0") + encode_frame(0, Flag.NEW_STREAM))
    with pytest.raises(ConnectionClosed):
        await asyncio.wait_for(sa.accept_stream(), 5)
    assert sa.is_closed
    with pytest.raises(ConnectionClosed):
        await asyncio.wait_for(raw.read(), 5)
    raw.reset()


async def test_bare_eof_ends_closed_streams_with_eof_and_others_with_an_error() -> None:
    """A stream the peer closed keeps its data, then EOF; a stream the peer never closed
    was cut short, so its reads fail: it must not look complete."""
    a, raw = channel_pair()
    sa = MplexMuxer().new_session(secure(a), is_initiator=True)
    await raw.write(
        encode_frame(7, Flag.NEW_STREAM, b"x")
        + encode_frame(7, Flag.MESSAGE_INITIATOR, b"data")
        + encode_frame(7, Flag.CLOSE_INITIATOR)
        + encode_frame(8, Flag.NEW_STREAM, b"y")
        + encode_frame(8, Flag.MESSAGE_INITIATOR, b"cut short")
    )
    await raw.close_write()
    r = await asyncio.wait_for(sa.accept_stream(), 5)
    assert r.stream_id == 7
    unfinished = await asyncio.wait_for(sa.accept_stream(), 5)
    await asyncio.wait_for(sa.wait_closed(), 5)
    assert await asyncio.wait_for(r.read(), 5) == b"data"
    assert await r.read() == b""
    with pytest.raises(ConnectionClosed):
        await unfinished.read()
    with pytest.raises(ConnectionClosed):
        await r.write(b"no")
    await asyncio.wait_for(sa.wait_closed(), 5)
    with pytest.raises(ConnectionClosed):
        await sa.accept_stream()
    assert await asyncio.wait_for(raw.read(), 5) == b""
    await raw.close()


async def test_inbound_beyond_max_streams_is_reset() -> None:
    a, raw = channel_pair()
    sa = MplexMuxer(MplexOptions(max_streams=2)).new_session(secure(a), is_initiator=True)
    await raw.write(b"".join(encode_frame(i, Flag.NEW_STREAM) for i in range(3)))
    assert await asyncio.wait_for(raw.readexactly(2), 5) == encode_frame(2, Flag.RESET_RECEIVER)
    assert len(sa.streams) == 2
    await sa.close()
    await raw.close()


async def test_plugin_spec() -> None:
    from p2pkit.plugins import Components
    from p2pkit_mplex import plugin

    (spec,) = plugin.p2pkit_stream_muxers()
    assert (spec.kind, spec.name, spec.protocol_id) == ("muxer", "mplex", "/mplex/6.7.0")
    assert spec.options is MplexOptions
    muxer = spec.factory(cast(Components, None), MplexOptions(max_streams=5))
    assert isinstance(muxer, MplexMuxer) and muxer.options.max_streams == 5


@pytest.mark.parametrize("size", [1000, 200 * 1024, 3 * MiB])
async def test_caller_may_reuse_buffer_after_write(
    sessions: tuple[MplexConnection, MplexConnection], size: int
) -> None:
    """Python 3.12+ transports keep a reference to what is written: never hand them
    the caller's mutable buffer."""
    sa, sb = sessions

    async def drain() -> bytes:
        r = await sb.accept_stream()
        got = bytearray()
        while chunk := await r.read():
            got += chunk
        return bytes(got)

    reader = asyncio.create_task(drain())  # no flow control: keep reading
    s = await sa.open_stream()
    buf = bytearray(b"A" * size)
    await s.write(buf)
    buf[:] = b"B" * size
    await s.write(memoryview(buf))
    buf[:] = b"C" * size
    await s.close_write()
    assert await asyncio.wait_for(reader, 10) == b"A" * size + b"B" * size


async def test_close_discards_unread_data_without_reset(
    sessions: tuple[MplexConnection, MplexConnection],
) -> None:
    """close() stops reading: unread data no longer counts against max_stream_buffer."""
    sa, sb = sessions
    s = await sa.open_stream()
    await s.write(bytes(3 * MiB))
    r = await sb.accept_stream()
    await asyncio.sleep(0.05)
    await r.close()
    assert await r.read() == b""
    assert r not in sb.streams
    # The writer may keep writing (mplex cannot tell it to stop) without a reset.
    for _ in range(4):
        await s.write(bytes(MiB))
    await s.close_write()
    assert await asyncio.wait_for(s.read(), 5) == b""  # r's Close arrived
    await asyncio.sleep(0.05)
    assert sa.streams == [] and sb.streams == []


async def test_reset_after_session_end_drops_buffered_data() -> None:
    a, raw = channel_pair()
    sa = MplexMuxer().new_session(secure(a), is_initiator=True)
    await raw.write(
        encode_frame(0, Flag.NEW_STREAM)
        + encode_frame(0, Flag.MESSAGE_INITIATOR, b"data")
        + encode_frame(0, Flag.CLOSE_INITIATOR)
    )
    await raw.close_write()
    r = await asyncio.wait_for(sa.accept_stream(), 5)
    await asyncio.wait_for(sa.wait_closed(), 5)
    r.reset()
    with pytest.raises(StreamReset):
        await r.read()
    await raw.close()


async def test_small_writes_are_coalesced_and_ordered() -> None:
    """Small frames of one loop iteration leave in one channel write; a large write
    in between flushes them first, so the byte order is kept."""
    a, b = channel_pair()
    calls: list[int] = []
    real_write = a.write_nowait

    def counting_write(data: bytes | bytearray | memoryview) -> None:
        calls.append(len(data))
        real_write(data)

    a.write_nowait = counting_write  # type: ignore[method-assign]
    sa = MplexMuxer().new_session(secure(a), is_initiator=True)
    sb = MplexMuxer().new_session(secure(b), is_initiator=False)
    s = await sa.open_stream()
    for i in range(100):
        await s.write(b"%03d" % i)
    await asyncio.sleep(0)
    assert len(calls) == 1  # NewStream + 100 messages in one write
    big = bytes(range(256)) * 1024  # 256 KiB: header + payload written directly
    await s.write(b"x")
    await s.write(big)
    await s.write(b"y")
    await s.close_write()
    r = await sb.accept_stream()
    got = bytearray()
    while chunk := await asyncio.wait_for(r.read(), 5):
        got += chunk
    assert got == b"".join(b"%03d" % i for i in range(100)) + b"x" + big + b"y"
    await sa.close()
    await sb.close()


async def test_at_most_ten_streams_before_the_peer_speaks() -> None:
    """js-libp2p resets every stream once more than 10 arrive before it listens
    (maxEarlyStreams): the 11th ``open_stream`` waits for the peer's first frame."""
    a, b = channel_pair()
    sa = MplexMuxer().new_session(secure(a), is_initiator=True)
    b.pause_reading()  # a silent peer: nothing comes back yet
    streams = [await asyncio.wait_for(sa.open_stream(), 5) for _ in range(10)]
    eleventh = asyncio.ensure_future(sa.open_stream())
    await asyncio.sleep(0.05)
    assert not eleventh.done()
    # The peer speaks (a frame on one of our streams): the bound is lifted.
    await b.write(encode_frame(streams[0].key.id, Flag.MESSAGE_RECEIVER, b"hi"))
    more = await asyncio.wait_for(eleventh, 5)
    assert more.stream_id == 10
    extra = [await asyncio.wait_for(sa.open_stream(), 5) for _ in range(20)]
    assert len(extra) == 20
    sa.abort()


async def test_waiting_for_the_peer_ends_with_the_session() -> None:
    a, _b = channel_pair()
    sa = MplexMuxer().new_session(secure(a), is_initiator=True)
    for _ in range(10):
        await sa.open_stream()
    waiting = asyncio.ensure_future(sa.open_stream())
    await asyncio.sleep(0.01)
    sa.abort()
    with pytest.raises(ConnectionClosed):
        await asyncio.wait_for(waiting, 5)


# -- a hostile or unresponsive peer ---------------------------------------------------------


async def test_long_stream_names_are_cut() -> None:
    """A NewStream name is informational; 1 MiB names on every stream used to be kept
    whole (gigabytes per connection, counted nowhere)."""
    from p2pkit_mplex.session import MAX_NAME

    a, raw = channel_pair()
    sa = MplexMuxer().new_session(secure(a), is_initiator=False)
    await raw.write(encode_frame(1, Flag.NEW_STREAM, b"\xff" * (MiB - 1)))
    await raw.write(encode_frame(3, Flag.NEW_STREAM, "é".encode() * 1000))
    await raw.write(encode_frame(5, Flag.NEW_STREAM, b"5"))
    names = [(await asyncio.wait_for(sa.accept_stream(), 5)).name for _ in range(3)]  # type: ignore[attr-defined]
    assert len(names[0]) == MAX_NAME and set(names[0]) == {"\ufffd"}
    assert names[1] == "é" * (MAX_NAME // 2)
    assert names[2] == "5" and not sa.is_closed
    sa.abort()
    raw.reset()


async def test_tiny_messages_cost_about_what_is_accounted() -> None:
    """1-byte messages used to be kept one object each: ~57x the bytes counted against
    max_stream_buffer and the memory reservation (p2pkit.io.ReadBuffer)."""
    import gc
    import tracemalloc

    a, raw = channel_pair()
    sa = MplexMuxer().new_session(secure(a), is_initiator=False)
    await raw.write(encode_frame(1, Flag.NEW_STREAM) + encode_frame(3, Flag.NEW_STREAM))
    one, two = await sa.accept_stream(), await sa.accept_stream()
    n = 16 * 1024
    x, y = (
        encode_frame(1, Flag.MESSAGE_INITIATOR, b"x"),
        encode_frame(3, Flag.MESSAGE_INITIATOR, b"y"),
    )
    wire = (x + y) * n
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        for off in range(0, len(wire), 256 * 1024):
            await raw.write(wire[off : off + 256 * 1024])
        async with asyncio.timeout(30):  # a loaded machine under tracemalloc
            while two._buf.size < n:  # type: ignore[attr-defined]
                await asyncio.sleep(0.01)
        grown = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    assert grown < 3 * 2 * n, f"{grown} bytes held for {2 * n} buffered"
    assert await one.readexactly(n) == b"x" * n and await two.readexactly(n) == b"y" * n
    sa.abort()
    raw.reset()


async def test_streams_we_closed_free_their_slots_without_the_peer() -> None:
    """A peer that never sends Close must not use up ``max_streams``: a stream we
    closed both ways leaves the table (as js-libp2p lets go of it)."""
    a, raw = channel_pair()
    sa = MplexMuxer(MplexOptions(max_streams=5)).new_session(secure(a), is_initiator=True)
    await raw.write(encode_frame(0, Flag.NEW_STREAM))  # the peer speaks once, then never again
    inbound = await asyncio.wait_for(sa.accept_stream(), 5)
    for _ in range(20):
        stream = await asyncio.wait_for(sa.open_stream(), 5)
        await stream.write(b"x")
        await stream.close()
    assert sa._session.stream_keys() == [inbound.key]  # type: ignore[attr-defined]
    # The peer's late Close and data for those streams are stragglers: dropped.
    await raw.write(
        encode_frame(3, Flag.MESSAGE_RECEIVER, b"late") + encode_frame(3, Flag.CLOSE_RECEIVER)
    )
    await asyncio.sleep(0.05)
    assert not sa.is_closed
    sa.abort()
    raw.reset()
