"""The asyncio shell: pull mode, push mode, half-close, flow control, close and reset."""

from __future__ import annotations

import asyncio
import os

import pytest

from p2pkit.errors import ConnectionClosed, StreamClosed
from p2pkit.testing.memory import channel_pair
from p2pkit_tls import TlsConnection
from p2pkit_tls.testing import handshake, make_pair, new_security


class Collector:
    """A push-mode receiver that records everything, optionally pausing its channel."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.eof = False
        self.lost: list[BaseException | None] = []
        self.events: list[str] = []
        self.changed = asyncio.Event()
        self.pause_after: int | None = None
        self.conn: TlsConnection | None = None

    def data_received(self, data: memoryview) -> None:
        assert not self.eof, "data after EOF"
        self.data += data
        self.events.append("data")
        self.changed.set()
        if self.pause_after is not None and len(self.data) >= self.pause_after and self.conn:
            self.pause_after = None
            self.conn.pause_reading()

    def eof_received(self) -> None:
        self.eof = True
        self.events.append("eof")
        self.changed.set()

    def connection_lost(self, exc: BaseException | None) -> None:
        self.lost.append(exc)
        self.events.append("lost")
        self.changed.set()

    async def wait_for(self, predicate: object, timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout):
            while not predicate():  # type: ignore[operator]
                self.changed.clear()
                await self.changed.wait()


async def secure_pair(kind: str = "memory") -> tuple[TlsConnection, TlsConnection]:
    client, server = new_security(), new_security()
    a, b = await make_pair(kind)
    ca, cb = await handshake(client, server, a, b, expected=server.local_peer)
    assert isinstance(ca, TlsConnection) and isinstance(cb, TlsConnection)
    return ca, cb


@pytest.mark.parametrize("kind", ["memory", "tcp"])
async def test_pull_large_transfer_both_ways(kind: str) -> None:
    ca, cb = await secure_pair(kind)
    up, down = os.urandom(1_000_003), os.urandom(300_001)

    async def send(conn: TlsConnection, payload: bytes) -> None:
        view = memoryview(payload)
        for i in range(0, len(payload), 70_000):
            await conn.write(view[i : i + 70_000])
        await conn.close_write()

    async def recv_all(conn: TlsConnection) -> bytes:
        parts = []
        while chunk := await conn.read(50_000):
            assert len(chunk) <= 50_000
            parts.append(chunk)
        return b"".join(parts)

    async with asyncio.timeout(20):
        _, _, got_b, got_a = await asyncio.gather(
            send(ca, up), send(cb, down), recv_all(cb), recv_all(ca)
        )
    assert got_b == up and got_a == down
    await ca.close()
    await cb.close()


async def test_half_close_other_direction_keeps_working() -> None:
    ca, cb = await secure_pair("tcp")
    await ca.write(b"request")
    await ca.close_write()
    await ca.close_write()  # idempotent
    assert await cb.readexactly(7) == b"request"
    assert await cb.read() == b""  # close_notify -> EOF
    with pytest.raises(StreamClosed):
        await ca.write(b"more")
    await cb.write(b"response")
    await cb.close_write()
    assert await ca.readexactly(8) == b"response"
    assert await ca.read() == b""
    await ca.close()
    await cb.close()


async def test_unread_and_switch_to_push_delivers_buffered_first() -> None:
    ca, cb = await secure_pair()
    await ca.write(b"negotiation-tail|muxer-bytes")
    got = await cb.readexactly(len(b"negotiation-tail|muxer-bytes"))
    cb.unread(got[len(b"negotiation-tail|") :])
    await ca.write(b"+more")
    await asyncio.sleep(0.01)  # the second record sits undecrypted in the session
    rx = Collector()
    cb.start_push(rx)
    await ca.write(b"+live")
    await rx.wait_for(lambda: len(rx.data) == len(b"muxer-bytes+more+live"))
    assert bytes(rx.data) == b"muxer-bytes+more+live"
    with pytest.raises(RuntimeError):
        await cb.read()
    await ca.close_write()
    await rx.wait_for(lambda: rx.eof)
    # The push side can still write: the other direction is open.
    await cb.write(b"bye")
    assert await ca.readexactly(3) == b"bye"
    await ca.close()
    await cb.close()
    assert rx.events.count("eof") == 1 and rx.events.index("eof") == len(rx.events) - 1 - len(
        rx.lost
    )


@pytest.mark.parametrize("kind", ["memory", "tcp"])
async def test_push_mode_large_and_pause_resume(kind: str) -> None:
    ca, cb = await secure_pair(kind)
    rx = Collector()
    rx.conn = cb
    rx.pause_after = 100_000
    cb.start_push(rx)
    payload = os.urandom(2_000_000)
    for i in range(0, len(payload), 200_000):
        ca.write_nowait(payload[i : i + 200_000])
    await rx.wait_for(lambda: len(rx.data) >= 100_000)
    await asyncio.sleep(0.05)
    paused_at = len(rx.data)
    await asyncio.sleep(0.05)
    assert len(rx.data) == paused_at < len(payload)  # nothing delivered while paused
    cb.resume_reading()
    await rx.wait_for(lambda: len(rx.data) == len(payload), timeout=20)
    assert bytes(rx.data) == payload
    await ca.drain()
    await ca.close()
    await rx.wait_for(lambda: rx.eof)
    await cb.close()


async def test_backpressure_write_paused_and_drain() -> None:
    a, b = channel_pair(high_water=64 * 1024)
    client, server = new_security(), new_security()
    ca, cb = await handshake(client, server, a, b)
    assert isinstance(ca, TlsConnection) and isinstance(cb, TlsConnection)
    # The reader's TLS layer decrypts up to its pull-buffer limit (1 MiB) ahead of
    # read(); beyond that the bytes stay in the raw connection and the writer waits.
    total = 0
    while total < 3 << 20:
        ca.write_nowait(b"z" * 200_000)
        total += 200_000
    assert ca.write_paused  # the peer has not read anything yet
    drained = asyncio.create_task(ca.drain())
    await asyncio.sleep(0.05)
    assert not drained.done()
    assert len(await cb.readexactly(total)) == total
    await asyncio.wait_for(drained, 5)
    assert not ca.write_paused
    await ca.close()
    await cb.close()


async def test_tcp_eof_without_close_notify_is_eof() -> None:
    ca, cb = await secure_pair("tcp")
    rx = Collector()
    cb.start_push(rx)
    await ca.write(b"last words")
    await ca.raw.close_write()  # bypass TLS: a bare TCP FIN
    await rx.wait_for(lambda: rx.eof)
    assert bytes(rx.data) == b"last words"
    await ca.close()
    await cb.close()


async def test_corrupted_record_fails_the_connection() -> None:
    ca, cb = await secure_pair("tcp")
    rx = Collector()
    cb.start_push(rx)
    ca.raw.write_nowait(b"\x17\x03\x03\x00\x20" + b"\x00" * 32)  # bogus application record
    await rx.wait_for(lambda: rx.lost)
    assert rx.lost and isinstance(rx.lost[0], Exception)
    assert cb.closed
    with pytest.raises(ConnectionClosed):
        cb.write_nowait(b"x")
    ca.reset()


async def test_close_and_reset() -> None:
    ca, cb = await secure_pair("tcp")
    await ca.close()
    await ca.close()  # idempotent
    assert ca.closed
    assert await cb.read() == b""
    with pytest.raises(ConnectionClosed):
        await ca.write(b"x")
    await cb.close()

    ca, cb = await secure_pair("tcp")
    cb.reset()
    cb.reset()  # idempotent, never raises
    with pytest.raises(ConnectionError):
        while await asyncio.wait_for(ca.read(), 5):
            pass
        raise ConnectionError("EOF after reset")
    ca.reset()


async def test_reset_from_inside_data_received_stops_delivery() -> None:
    ca, cb = await secure_pair("memory")
    calls: list[int] = []

    class Resetter(Collector):
        def data_received(self, data: memoryview) -> None:
            calls.append(len(data))
            cb.reset()

    rx = Resetter()
    cb.start_push(rx)
    ca.write_nowait(b"r" * 100_000)  # several records arrive in one batch
    async with asyncio.timeout(5):
        while not calls:
            await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)  # room for a (wrong) second delivery
    assert len(calls) == 1
    ca.reset()


async def test_cancelled_handshake_resets_raw() -> None:
    client = new_security()
    a, b = channel_pair()
    task = asyncio.create_task(client.secure_outbound(a, None))
    await asyncio.sleep(0.02)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert a.closed
    b.reset()
