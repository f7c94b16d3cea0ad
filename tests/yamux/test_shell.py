"""The asyncio shell against a hand-driven peer: a raw channel plus a sans-IO session.

The peer side reads and writes raw bytes, so these tests see exactly what the shell
puts on the wire (ACK timing, window updates, GoAway) and can misbehave on purpose.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from p2pkit.abc import RawConnection
from p2pkit.errors import ConnectionClosed, ResourceLimitExceeded, StreamReset
from p2pkit.plugins.spec import Components
from p2pkit.testing.memory import channel_pair
from p2pkit.timerwheel import timer_wheel
from p2pkit_yamux import (
    YamuxConnection,
    YamuxGoAway,
    YamuxMuxer,
    YamuxOptions,
    YamuxProtocolError,
)
from p2pkit_yamux import events as ev
from p2pkit_yamux import frames as fr
from p2pkit_yamux.plugin import p2pkit_stream_muxers
from p2pkit_yamux.session import YamuxSession

KiB = 1024
QUIET = YamuxOptions(keepalive_interval=0, ping_on_start=False, close_timeout=1.0)


class RawPeer:
    """The far end, driven by hand: parses with a sans-IO session (the listener role)."""

    def __init__(self, chan: RawConnection, options: YamuxOptions = QUIET) -> None:
        self.chan = chan
        self.session = YamuxSession(is_initiator=False, options=options)
        self.events: list[ev.Event] = []

    async def send(self, data: bytes) -> None:
        await self.chan.write(data)

    async def pump(self, timeout: float = 0.2) -> list[ev.Event]:
        """Read for up to ``timeout`` seconds (or EOF); returns the new events."""
        new: list[ev.Event] = []
        try:
            async with asyncio.timeout(timeout):
                while True:
                    data = await self.chan.read()
                    if not data:
                        new.append(ev.Event())  # marker: EOF
                        break
                    new += self.session.receive_data(data, asyncio.get_running_loop().time())
                    out = self.session.data_to_send()
                    if out:
                        await self.chan.write(out)
        except TimeoutError:
            pass
        self.events += new
        return new

    async def wait_for(self, kind: type[ev.Event], timeout: float = 2.0) -> ev.Event:
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while loop.time() < end:
            for e in await self.pump(0.05):
                if isinstance(e, kind):
                    return e
        raise AssertionError(f"no {kind.__name__} within {timeout}s; saw {self.events}")


@pytest.fixture
async def pair() -> AsyncIterator[tuple[YamuxConnection, RawPeer]]:
    yield await make_pair(QUIET)


_made: list[tuple[YamuxConnection, RawConnection]] = []


async def make_pair(options: YamuxOptions) -> tuple[YamuxConnection, RawPeer]:
    a, b = channel_pair()
    conn = YamuxMuxer(options).new_session(a, is_initiator=True)  # type: ignore[arg-type]
    _made.append((conn, b))
    return conn, RawPeer(b)


@pytest.fixture(autouse=True)
async def _cleanup() -> AsyncIterator[None]:
    yield
    while _made:
        conn, raw = _made.pop()
        conn.abort()
        raw.reset()
        await asyncio.wait_for(conn.wait_closed(), 5)


# -- opening, ACK, data ------------------------------------------------------------------


async def test_open_sends_syn_then_data_and_ack_once(pair: tuple[YamuxConnection, RawPeer]) -> None:
    conn, peer = pair
    stream = await conn.open_stream()
    assert stream.stream_id == 1 and stream.protocol is None
    await stream.write(b"hello")
    await peer.wait_for(ev.DataReceived)
    assert peer.events[0] == ev.StreamOpened(1)
    assert peer.events[1] == ev.DataReceived(1, b"hello")
    # the peer accepts: ACK + reply; the shell reads the reply
    await peer.send(peer.session.accept(1) + fr.data_frame(1, b"world"))
    assert await stream.readexactly(5) == b"world"
    assert conn.session.unacked_outbound == 0


async def test_inbound_stream_acked_when_accepted(pair: tuple[YamuxConnection, RawPeer]) -> None:
    conn, peer = pair
    sid, syn = peer.session.open_stream()
    await peer.send(syn + fr.data_frame(sid, b"early data before the ACK"))
    assert not await peer.pump(0.1)  # no ACK until the application accepts
    stream = await conn.accept_stream()
    assert stream.stream_id == 2 and not stream.is_initiator
    assert await peer.wait_for(ev.StreamAcked) == ev.StreamAcked(2)
    assert await stream.read() == b"early data before the ACK"
    await stream.close_write()
    assert await peer.wait_for(ev.StreamEOF) == ev.StreamEOF(2)
    assert [e for e in peer.events if isinstance(e, ev.StreamAcked)] == [ev.StreamAcked(2)]


async def test_open_waits_while_syns_unacked() -> None:
    conn, peer = await make_pair(YamuxOptions(max_outbound_unacked=2, keepalive_interval=0))
    await conn.open_stream()
    await conn.open_stream()
    third = asyncio.create_task(conn.open_stream())
    await asyncio.sleep(0.05)
    assert not third.done()
    await peer.pump(0.05)
    await peer.send(peer.session.accept(1))
    stream = await asyncio.wait_for(third, 2)
    assert stream.stream_id == 5


async def test_many_opens_on_a_new_session_wait_for_the_first_ack() -> None:
    """20 concurrent opens: 10 SYNs go out at once (early_outbound_unacked), the rest
    as soon as the peer ACKs one stream (then up to max_outbound_unacked)."""
    conn, peer = await make_pair(YamuxOptions(keepalive_interval=0))
    opens = [asyncio.create_task(conn.open_stream()) for _ in range(20)]
    await asyncio.sleep(0.05)
    assert sum(t.done() for t in opens) == 10
    assert conn.session.unacked_outbound == 10
    await peer.pump(0.05)
    await peer.send(peer.session.accept(1))
    streams = await asyncio.wait_for(asyncio.gather(*opens), 2)
    assert sorted(s.stream_id for s in streams) == list(range(1, 41, 2))


async def test_accept_backlog_overflow_is_refused_with_rst() -> None:
    conn, peer = await make_pair(YamuxOptions(accept_backlog=2, keepalive_interval=0))
    frames = b"".join(peer.session.open_stream()[1] for _ in range(3))
    await peer.send(frames)
    assert await peer.wait_for(ev.StreamReset) == ev.StreamReset(6)
    assert len(conn.streams) == 2


async def test_frame_as_large_as_whole_window(pair: tuple[YamuxConnection, RawPeer]) -> None:
    conn, peer = pair
    sid, syn = peer.session.open_stream()
    payload = bytes(range(256)) * 1024  # exactly 256 KiB in one Data frame
    await peer.send(syn + fr.data_frame(sid, payload))
    stream = await conn.accept_stream()
    assert await stream.readexactly(len(payload)) == payload
    assert not conn.is_closed


# -- flow control ------------------------------------------------------------------------


async def test_window_update_only_after_the_app_consumed(
    pair: tuple[YamuxConnection, RawPeer],
) -> None:
    conn, peer = pair
    sid, syn = peer.session.open_stream()
    await peer.send(syn)
    stream = await conn.accept_stream()
    await peer.wait_for(ev.StreamAcked)
    peer.session.streams[sid].send_window = 256 * KiB
    _n, parts = peer.session.send_data(sid, bytes(256 * KiB))
    await peer.send(b"".join(bytes(p) for p in parts))
    events = await peer.pump(0.1)
    assert not [e for e in events if isinstance(e, ev.WindowUpdated)]  # nobody read yet
    assert len(await stream.readexactly(64 * KiB)) == 64 * KiB
    assert not [e for e in await peer.pump(0.05) if isinstance(e, ev.WindowUpdated)]
    await stream.readexactly(64 * KiB)  # half the window consumed: one batched update
    upd = await peer.wait_for(ev.WindowUpdated)
    assert isinstance(upd, ev.WindowUpdated) and upd.window == 128 * KiB


async def test_window_overrun_is_a_protocol_error(pair: tuple[YamuxConnection, RawPeer]) -> None:
    conn, peer = pair
    stream = await conn.open_stream()
    await stream.write(b"x")
    await peer.pump(0.05)
    await peer.send(fr.data_frame(1, bytes(256 * KiB + 1)))
    with pytest.raises(YamuxProtocolError, match="window-overrun"):
        await stream.read()
    assert isinstance(await peer.wait_for(ev.GoAwayReceived), ev.GoAwayReceived)
    assert peer.session.goaway_received == fr.GO_AWAY_PROTOCOL_ERROR
    await asyncio.wait_for(conn.wait_closed(), 2)
    with pytest.raises(ConnectionClosed):
        await conn.open_stream()


async def test_unread_does_not_return_credit_twice(pair: tuple[YamuxConnection, RawPeer]) -> None:
    conn, peer = pair
    sid, syn = peer.session.open_stream()
    await peer.send(syn + fr.data_frame(sid, bytes(200 * KiB)))
    stream = await conn.accept_stream()
    data = await stream.readexactly(100 * KiB)
    stream.unread(data)
    await stream.readexactly(100 * KiB)  # the same bytes again: no new credit
    assert not [e for e in await peer.pump(0.05) if isinstance(e, ev.WindowUpdated)]
    await stream.readexactly(100 * KiB)
    upd = await peer.wait_for(ev.WindowUpdated)
    # the raw frame bypassed the peer's send accounting: its window just grew by the delta
    assert isinstance(upd, ev.WindowUpdated) and upd.window == 256 * KiB + 200 * KiB


async def test_window_auto_tunes_over_a_fast_transfer() -> None:
    a, b = channel_pair(high_water=8 << 20)
    opts = YamuxOptions(keepalive_interval=0)
    client = YamuxMuxer(opts).new_session(a, is_initiator=True)  # type: ignore[arg-type]
    server = YamuxMuxer(opts).new_session(b, is_initiator=False)  # type: ignore[arg-type]
    try:
        out = await client.open_stream()
        block = bytes(1 << 20)

        async def send() -> None:
            for _ in range(48):
                await out.write(block)
            await out.close_write()

        sender = asyncio.create_task(send())
        inc = await server.accept_stream()
        peak = got = 0
        while chunk := await inc.read():
            got += len(chunk)
            peak = max(peak, server.session.receive_window(inc.stream_id))
        await sender
        assert got == 48 << 20
        assert server.session.rtt is not None  # the ping sent at start measured it
        assert peak > 256 * KiB
    finally:
        client.abort()
        server.abort()
        await client.wait_closed()
        await server.wait_closed()


# -- ping and keepalive ------------------------------------------------------------------


async def test_ping_on_start_gives_rtt() -> None:
    conn, peer = await make_pair(YamuxOptions(keepalive_interval=0))
    ping = await peer.wait_for(ev.PingReceived)
    assert isinstance(ping, ev.PingReceived)
    async with asyncio.timeout(5):  # the pong reaches conn
        while conn.session.rtt is None:
            await asyncio.sleep(0.01)
    assert 0 < conn.session.rtt < 5


async def test_peer_ping_is_answered(pair: tuple[YamuxConnection, RawPeer]) -> None:
    conn, peer = pair
    _, frame = peer.session.ping(asyncio.get_running_loop().time(), 0xABCDEF)
    await peer.send(frame + fr.ping(4242, fr.FLAG_ACK))  # plus an unsolicited ACK: ignored
    pong = await peer.wait_for(ev.PongReceived)
    assert isinstance(pong, ev.PongReceived) and pong.value == 0xABCDEF
    assert not await peer.pump(0.05)
    assert not conn.is_closed


async def test_keepalive_timeout_ends_session() -> None:
    conn, _peer = await make_pair(
        YamuxOptions(keepalive_interval=0.05, keepalive_timeout=0.1, ping_on_start=False)
    )
    stream = await conn.open_stream()
    await asyncio.wait_for(conn.wait_closed(), 2)  # the peer never answers
    with pytest.raises(StreamReset):
        await stream.read()


async def test_keepalive_answered_keeps_session() -> None:
    conn, peer = await make_pair(
        YamuxOptions(keepalive_interval=0.05, keepalive_timeout=0.1, ping_on_start=False)
    )
    pings = 0
    for _ in range(20):
        pings += sum(isinstance(e, ev.PingReceived) for e in await peer.pump(0.03))
    assert pings >= 3  # the raw peer answers every ping it parses
    assert not conn.is_closed


async def test_keepalive_timers_share_the_loop_wheel_and_leave_nothing_behind() -> None:
    """Sessions' keepalive timers live in the loop's timer wheel (one loop handle for
    all of them); once the sessions end, the wheel holds no timer and no handle."""
    wheel = timer_wheel()
    assert len(wheel) == 0
    opts = YamuxOptions(keepalive_interval=30.0, ping_on_start=False, close_timeout=1.0)
    pairs = [await make_pair(opts) for _ in range(50)]
    assert len(wheel) == 50 and wheel.slots <= 2 and wheel.armed
    for conn, _peer in pairs:
        conn.abort()
        await asyncio.wait_for(conn.wait_closed(), 5)
    assert len(wheel) == 0 and wheel.slots == 0 and not wheel.armed


# -- ends of a session -------------------------------------------------------------------


async def test_bare_eof_ends_finished_streams_with_eof_and_others_with_an_error(
    pair: tuple[YamuxConnection, RawPeer],
) -> None:
    """A stream the peer finished (FIN) keeps its data, then EOF; a stream the peer never
    finished was cut short, so its reads fail: it must not look complete."""
    conn, peer = pair
    sid, syn = peer.session.open_stream()
    await peer.send(syn + fr.data_frame(sid, b"last words", fr.FLAG_FIN))
    stream = await conn.accept_stream()
    sid2, syn2 = peer.session.open_stream()
    await peer.send(syn2 + fr.data_frame(sid2, b"cut short"))
    unfinished = await conn.accept_stream()
    mine = await conn.open_stream()
    await peer.chan.close_write()  # go's Session.Close(): no GoAway, just EOF
    await asyncio.wait_for(conn.wait_closed(), 2)
    assert await stream.read() == b"last words"
    assert await stream.read() == b""
    with pytest.raises(ConnectionClosed):
        await unfinished.read()
    with pytest.raises(ConnectionClosed):
        await mine.read()
    with pytest.raises(ConnectionClosed):
        await stream.write(b"x")
    with pytest.raises(ConnectionClosed):
        await conn.accept_stream()
    await asyncio.wait_for(conn.wait_closed(), 2)


async def test_go_away_normal_stops_new_streams_only(
    pair: tuple[YamuxConnection, RawPeer],
) -> None:
    conn, peer = pair
    stream = await conn.open_stream()
    await stream.write(b"a")
    await peer.pump(0.05)
    await peer.send(peer.session.accept(1) + fr.go_away(0) + fr.data_frame(1, b"still here"))
    assert await stream.readexactly(10) == b"still here"
    with pytest.raises(ConnectionClosed):
        await conn.open_stream()
    with pytest.raises(ConnectionClosed):
        await conn.accept_stream()
    await stream.write(b"b")  # existing streams go on
    assert ev.DataReceived(1, b"b") in await peer.pump(0.1)


@pytest.mark.parametrize("code", [1, 2, 0x1001])
async def test_go_away_error_ends_session(pair: tuple[YamuxConnection, RawPeer], code: int) -> None:
    conn, peer = pair
    stream = await conn.open_stream()
    await peer.send(fr.go_away(code))
    with pytest.raises(YamuxGoAway, match="GoAway"):
        await stream.read()
    await asyncio.wait_for(conn.wait_closed(), 2)


async def test_close_sends_go_away_and_closes_channel(
    pair: tuple[YamuxConnection, RawPeer],
) -> None:
    conn, peer = pair
    await conn.close()
    events = await peer.pump(0.2)
    assert ev.GoAwayReceived(0) in events
    assert type(events[-1]) is ev.Event  # EOF marker: the channel was closed
    await conn.close()  # idempotent


async def test_abort_resets_streams(pair: tuple[YamuxConnection, RawPeer]) -> None:
    conn, _ = pair
    stream = await conn.open_stream()
    conn.abort()
    with pytest.raises(StreamReset):
        await stream.read()
    with pytest.raises(StreamReset):
        await stream.write(b"x")
    assert conn.is_closed


# -- plugin ------------------------------------------------------------------------------


def test_plugin_spec() -> None:
    (spec,) = p2pkit_stream_muxers()
    assert spec.kind == "muxer" and spec.name == "yamux"
    assert spec.protocol_id == "/yamux/1.0.0" and spec.options is YamuxOptions
    muxer = spec.factory(Components(private_key=None, peer_id=None), YamuxOptions())  # type: ignore[arg-type]
    assert isinstance(muxer, YamuxMuxer) and muxer.protocol_id == "/yamux/1.0.0"


async def test_concurrent_writes_are_refused(pair: tuple[YamuxConnection, RawPeer]) -> None:
    conn, _peer = pair
    stream = await conn.open_stream()
    first = asyncio.create_task(stream.write(bytes(300 * KiB)))  # blocks on the window
    await asyncio.sleep(0.02)
    assert not first.done()
    with pytest.raises(RuntimeError, match="concurrent write"):
        await stream.write(b"x")
    stream.reset()
    with pytest.raises(StreamReset):
        await first


async def test_cancelled_opener_does_not_block_the_next() -> None:
    conn, peer = await make_pair(YamuxOptions(max_outbound_unacked=1, keepalive_interval=0))
    await conn.open_stream()
    second = asyncio.create_task(conn.open_stream())
    third = asyncio.create_task(conn.open_stream())
    await asyncio.sleep(0.02)
    second.cancel()
    await peer.pump(0.05)
    await peer.send(peer.session.accept(1))
    stream = await asyncio.wait_for(third, 2)
    assert stream.stream_id == 3 and second.cancelled()


async def test_close_resets_streams_never_accepted(pair: tuple[YamuxConnection, RawPeer]) -> None:
    conn, peer = pair
    sid, syn = peer.session.open_stream()
    await peer.send(syn)
    await asyncio.sleep(0.02)
    assert len(conn.streams) == 1
    loop = asyncio.get_running_loop()
    start = loop.time()
    await conn.close()
    assert loop.time() - start < 0.5  # no wait for a stream the app never saw
    events = await peer.pump(0.2)
    assert ev.StreamReset(sid) in events and ev.GoAwayReceived(0) in events


# -- a hostile or slow peer ------------------------------------------------------------------


PING_SYN = fr.header(fr.TYPE_PING, fr.FLAG_SYN, 0, 0)[:4]  # version, type, flags


def _syn_rst(sid: int) -> bytes:
    return fr.window_update(sid, 0, fr.FLAG_SYN | fr.FLAG_RST)


async def test_streams_opened_and_reset_at_once_do_not_pile_up(
    pair: tuple[YamuxConnection, RawPeer],
) -> None:
    """SYN|RST in one frame (or SYN then RST) costs the peer 12 bytes; each used to stay
    in the accept queue for good (~1.4 KB each, no limit applied)."""
    conn, peer = pair
    await peer.send(b"".join(_syn_rst(2 * i + 2) for i in range(20_000)))
    await peer.send(b"".join(fr.window_update(sid, 0, fr.FLAG_SYN)
                             + fr.window_update(sid, 0, fr.FLAG_RST)
                             for sid in range(40_002, 60_002, 2)))  # fmt: skip
    sid, syn = peer.session.open_stream()
    await peer.send(syn + fr.data_frame(sid, b"live"))
    stream = await asyncio.wait_for(conn.accept_stream(), 2)  # the live one, first
    assert stream.stream_id == sid and await stream.readexactly(4) == b"live"
    assert not conn._accept_queue and len(conn.streams) == 1 and not conn.is_closed


async def test_tiny_frames_cost_about_what_is_accounted(
    pair: tuple[YamuxConnection, RawPeer],
) -> None:
    """1-byte Data frames used to be kept one object each: ~40x the bytes counted in
    the memory reservation and the session's receive budget (p2pkit.io.ReadBuffer)."""
    import gc
    import tracemalloc

    conn, peer = pair
    sid1, syn1 = peer.session.open_stream()
    sid2, syn2 = peer.session.open_stream()
    await peer.send(syn1 + syn2)
    one, two = await conn.accept_stream(), await conn.accept_stream()
    n = 16 * KiB  # per stream; frames alternate (one stream's run would be joined)
    wire = b"".join(fr.data_frame(sid1, b"x") + fr.data_frame(sid2, b"y") for _ in range(n))
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        for off in range(0, len(wire), 256 * KiB):
            await peer.send(wire[off : off + 256 * KiB])
        async with asyncio.timeout(30):  # a loaded machine under tracemalloc
            while two._buf.size < n:
                await asyncio.sleep(0.01)
        grown = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    assert grown < 3 * 2 * n, f"{grown} bytes held for {2 * n} buffered"
    assert await one.readexactly(n) == b"x" * n and await two.readexactly(n) == b"y" * n


async def test_open_stream_fails_once_stream_ids_run_out(
    pair: tuple[YamuxConnection, RawPeer],
) -> None:
    conn, _peer = pair
    conn.session._next_id = fr.MAX_U32  # stands in for 2**31 opens
    last = await conn.open_stream()
    assert last.stream_id == fr.MAX_U32
    with pytest.raises(ResourceLimitExceeded, match="exhausted"):
        await asyncio.wait_for(conn.open_stream(), 1)  # an error, not a wait forever


async def test_keepalive_pings_only_a_quiet_peer() -> None:
    """As go-yamux: anything received extends the interval (a busy session sends no
    pings), and frames arriving after our ping prove the peer alive even while its pong
    is queued behind what we sent first."""
    conn, peer = await make_pair(
        YamuxOptions(keepalive_interval=0.5, keepalive_timeout=0.3, ping_on_start=False)
    )
    sid, syn = peer.session.open_stream()
    await peer.send(syn)
    loop = asyncio.get_running_loop()
    end = loop.time() + 1.2
    pings = 0
    while loop.time() < end:  # a frame every 50 ms, never a pong: we must not ping
        await peer.chan.write(fr.data_frame(sid, b"."))
        await asyncio.sleep(0.05)
        try:
            async with asyncio.timeout(0.001):
                data = await peer.chan.read()
        except TimeoutError:
            data = b""
        pings += data.count(PING_SYN)
    assert pings == 0 and not conn.is_closed
    # Quiet now: we ping; the peer keeps sending data but never answers the ping.
    got = b""
    async with asyncio.timeout(3):
        while PING_SYN not in got:
            got += await peer.chan.read()
    for _ in range(14):  # 0.7 s, past keepalive_timeout
        await peer.chan.write(fr.data_frame(sid, b"."))
        await asyncio.sleep(0.05)
    assert not conn.is_closed
    await asyncio.wait_for(conn.wait_closed(), 5)  # silent at last: then it ends


async def test_a_stream_closed_both_ways_is_reset_when_the_fin_never_comes() -> None:
    """As go-yamux's StreamCloseTimeout: a peer that never finishes our streams must not
    make us keep them forever; one that does finish gets no RST."""
    conn, peer = await make_pair(
        YamuxOptions(keepalive_interval=0, ping_on_start=False, stream_close_timeout=0.2)
    )
    kept, finished = await conn.open_stream(), await conn.open_stream()
    await kept.write(b"request")
    await kept.close()
    await finished.close()
    await peer.wait_for(ev.StreamEOF)
    await peer.send(
        peer.session.accept(kept.stream_id)
        + peer.session.accept(finished.stream_id)
        + peer.session.close_stream(finished.stream_id)
    )
    reset = await peer.wait_for(ev.StreamReset, timeout=3)
    assert reset == ev.StreamReset(kept.stream_id)
    assert not conn.streams and not conn.is_closed
    assert not any(  # the stream the peer finished was simply forgotten
        isinstance(e, ev.StreamReset) and e.stream_id == finished.stream_id for e in peer.events
    )
