"""multistream-select over real ByteStreams: in-memory pairs and loopback TCP."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from p2pkit.abc import Buffer, ByteStream
from p2pkit.errors import (
    HandshakeTimeout,
    MessageTooLarge,
    NegotiationError,
    NegotiationTimeout,
    ProtocolNotSupported,
    StreamReset,
)
from p2pkit.multistream import (
    HEADER,
    LS_MESSAGE,
    NA_MESSAGE,
    LazyStream,
    encode_ls_response,
    encode_message,
    list_protocols,
    select_inbound,
    select_outbound,
    select_outbound_lazy,
)
from p2pkit.testing.bytestream_pair import bytestream_pair
from p2pkit.varint import encode_uvarint

NOISE = "/noise"
TLS = "/tls/1.0.0"
ECHO = "/echo/1.0.0"


async def read_exactly(stream: ByteStream, n: int) -> bytes:
    async with asyncio.timeout(5):
        return await stream.readexactly(n)


@pytest.mark.parametrize("chunk_size", [None, 1, 3])
async def test_select_and_app_data_intact(chunk_size: int | None) -> None:
    a, b = bytestream_pair(chunk_size)

    async def dialer() -> str:
        proto = await select_outbound(a, [TLS, NOISE])
        await a.write(b"hello from dialer")
        return proto

    async def listener() -> str:
        proto = await select_inbound(b, [NOISE])
        await b.write(b"hello from listener")
        return proto

    async with asyncio.timeout(5):
        pa, pb = await asyncio.gather(dialer(), listener())
    assert pa == pb == NOISE
    assert await read_exactly(b, 17) == b"hello from dialer"
    assert await read_exactly(a, 19) == b"hello from listener"


async def test_surplus_in_same_packet_is_unread() -> None:
    """Header, proposal and application data in one write reach the application."""
    a, b = bytestream_pair()
    await a.write(HEADER + encode_message(NOISE) + b"app-bytes")
    async with asyncio.timeout(5):
        assert await select_inbound(b, lambda p: p == NOISE) == NOISE
    assert await read_exactly(b, 9) == b"app-bytes"
    # The listener answered header + echo in one write.
    assert await a.read() == HEADER + encode_message(NOISE)

    # Initiator side: the answer and the first application bytes arrive together.
    a, b = bytestream_pair()
    await b.write(HEADER + encode_message(NOISE) + b"reply")
    async with asyncio.timeout(5):
        assert await select_outbound(a, [NOISE]) == NOISE
    assert await read_exactly(a, 5) == b"reply"


async def test_all_refused() -> None:
    a, b = bytestream_pair()

    async def dialer() -> None:
        try:
            await select_outbound(a, ["/x", "/y"])
        finally:
            await a.close()

    async with asyncio.timeout(5):
        res = await asyncio.gather(dialer(), select_inbound(b, [NOISE]), return_exceptions=True)
    assert isinstance(res[0], ProtocolNotSupported)
    assert res[0].proposed == ["/x", "/y"]
    # The listener then sees EOF in the middle of the negotiation.
    assert isinstance(res[1], NegotiationError)


async def test_ls_answered_by_select_inbound() -> None:
    a, b = bytestream_pair()
    task = asyncio.create_task(select_inbound(b, [NOISE, TLS]))
    await a.write(HEADER + LS_MESSAGE)
    expected = HEADER + encode_ls_response([NOISE, TLS])
    assert await read_exactly(a, len(expected)) == expected
    await a.write(encode_message(TLS))
    async with asyncio.timeout(5):
        assert await task == TLS


async def test_list_protocols_probe() -> None:
    a, b = bytestream_pair(chunk_size=2)
    task = asyncio.create_task(select_inbound(b, [NOISE, TLS]))
    async with asyncio.timeout(5):
        assert await list_protocols(a) == [NOISE, TLS]
    await a.close()
    with pytest.raises(NegotiationError):
        async with asyncio.timeout(5):
            await task
    # A responder without a list answers na.
    a, b = bytestream_pair()
    task = asyncio.create_task(select_inbound(b, lambda p: p == NOISE))
    async with asyncio.timeout(5):
        assert await list_protocols(a) is None
    await a.close()
    with pytest.raises(NegotiationError):
        async with asyncio.timeout(5):
            await task


async def test_lazy_success() -> None:
    a, b = bytestream_pair()
    lazy = await select_outbound_lazy(a, ECHO)
    assert isinstance(lazy, LazyStream) and not lazy.negotiated
    await lazy.write(b"ping")  # application data before any answer
    async with asyncio.timeout(5):
        assert await select_inbound(b, [ECHO]) == ECHO
    assert await read_exactly(b, 4) == b"ping"
    await b.write(b"pong")
    assert await read_exactly(lazy, 4) == b"pong"
    assert lazy.negotiated
    await lazy.close()
    assert await b.read() == b""


async def test_lazy_na_raises_on_first_read() -> None:
    a, b = bytestream_pair()
    lazy = await select_outbound_lazy(a, ECHO)
    await lazy.write(encode_message("/app-data"))

    async def listener() -> None:
        # The listener refuses the proposal; the lazy data then reads as a proposal
        # it refuses too; then the dialer gives up and resets the stream.
        with pytest.raises((NegotiationError, StreamReset)):
            await select_inbound(b, [NOISE])

    task = asyncio.create_task(listener())
    async with asyncio.timeout(5):
        with pytest.raises(ProtocolNotSupported):
            await lazy.read()
        with pytest.raises(ProtocolNotSupported):  # and stays failed
            await lazy.read()
    await lazy.close()
    async with asyncio.timeout(5):
        await task


async def test_lazy_close_reads_the_answer_first() -> None:
    a, b = bytestream_pair()
    lazy = await select_outbound_lazy(a, ECHO)
    await lazy.write(b"x")
    listener = asyncio.create_task(select_inbound(b, [ECHO]))
    async with asyncio.timeout(5):
        await lazy.close()
        assert await listener == ECHO
    assert lazy.negotiated
    assert await read_exactly(b, 1) == b"x"


@pytest.mark.parametrize("role", ["outbound", "inbound", "lazy"])
async def test_silent_peer_times_out(role: str) -> None:
    a, _b = bytestream_pair()
    start = time.monotonic()
    with pytest.raises(NegotiationTimeout) as raised:
        async with asyncio.timeout(5):
            if role == "outbound":
                await select_outbound(a, [NOISE], timeout=0.2)
            elif role == "inbound":
                await select_inbound(a, [NOISE], timeout=0.2)
            else:
                lazy = await select_outbound_lazy(a, NOISE, timeout=0.2)
                await lazy.read()
    elapsed = time.monotonic() - start
    assert 0.15 < elapsed < 2.0
    # Typed as what it is, and still what it was raised as before NegotiationTimeout.
    assert isinstance(raised.value, NegotiationError)
    assert isinstance(raised.value, HandshakeTimeout)
    assert isinstance(raised.value, TimeoutError)


async def test_peer_closes_midway() -> None:
    a, b = bytestream_pair()
    await b.write(HEADER)
    await b.close_write()
    with pytest.raises(NegotiationError):
        async with asyncio.timeout(5):
            await select_outbound(a, [NOISE])
    a, b = bytestream_pair()
    await a.write(HEADER + encode_message("/x")[:3])
    await a.close_write()
    with pytest.raises(NegotiationError):
        async with asyncio.timeout(5):
            await select_inbound(b, [NOISE])


async def test_peer_resets_midway() -> None:
    a, b = bytestream_pair()
    task = asyncio.create_task(select_outbound(a, [NOISE]))
    await asyncio.sleep(0.01)
    b.reset()
    with pytest.raises(StreamReset):
        async with asyncio.timeout(5):
            await task


async def test_overlong_message_rejected_at_once() -> None:
    a, b = bytestream_pair()
    # Only the 10 MB length prefix is sent: rejection must not wait for the body.
    await a.write(HEADER + encode_uvarint(10 * 1024 * 1024))
    start = time.monotonic()
    with pytest.raises(MessageTooLarge):
        await select_inbound(b, [NOISE], timeout=5)
    assert time.monotonic() - start < 1.0


@pytest.mark.parametrize(
    "answer",
    [
        encode_message("/multistream/2.0.0"),
        HEADER + b"\x06/noise",  # will never get its newline: NegotiationError at EOF
        HEADER + b"\x04\xff\xfe/\n",
        HEADER + b"\x07/no\nse\n",
    ],
)
async def test_malformed_answers(answer: bytes) -> None:
    a, b = bytestream_pair()
    await b.write(answer)
    await b.close_write()
    with pytest.raises(NegotiationError):
        async with asyncio.timeout(5):
            await select_outbound(a, [NOISE])


async def test_na_then_accept_over_pair() -> None:
    a, b = bytestream_pair()
    task = asyncio.create_task(select_outbound(a, [TLS, NOISE]))
    first = await read_exactly(b, len(HEADER) + len(encode_message(TLS)))
    assert first == HEADER + encode_message(TLS)
    await b.write(HEADER + NA_MESSAGE)
    assert await read_exactly(b, len(encode_message(NOISE))) == encode_message(NOISE)
    await b.write(encode_message(NOISE))
    async with asyncio.timeout(5):
        assert await task == NOISE


# -- loopback TCP ----------------------------------------------------------------------


class TcpByteStream(ByteStream):
    """Minimal ByteStream over asyncio streams (the real TCP plugin lives elsewhere)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._unread: list[bytes] = []

    async def read(self, max_bytes: int = -1) -> bytes:
        if self._unread:
            data = self._unread.pop()
            if 0 <= max_bytes < len(data):
                self._unread.append(data[max_bytes:])
                data = data[:max_bytes]
            return data
        return await self._reader.read(max_bytes if max_bytes > 0 else 65536)

    async def write(self, data: Buffer) -> None:
        self._writer.write(bytes(data))
        await self._writer.drain()

    async def close_write(self) -> None:
        if self._writer.can_write_eof() and not self._writer.is_closing():
            self._writer.write_eof()

    async def close(self) -> None:
        self._writer.close()
        try:
            await self._writer.wait_closed()
        except ConnectionError:
            pass

    def reset(self) -> None:
        self._writer.transport.abort()

    def unread(self, data: bytes) -> None:
        if data:
            self._unread.append(bytes(data))


@pytest.fixture
async def tcp_pair() -> AsyncIterator[tuple[TcpByteStream, TcpByteStream]]:
    accepted: asyncio.Queue[TcpByteStream] = asyncio.Queue()

    async def on_conn(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await accepted.put(TcpByteStream(r, w))

    server = await asyncio.start_server(on_conn, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    r, w = await asyncio.open_connection("127.0.0.1", port)
    client = TcpByteStream(r, w)
    async with asyncio.timeout(5):
        srv = await accepted.get()
    try:
        yield client, srv
    finally:
        await client.close()
        await srv.close()
        server.close()
        await server.wait_closed()


async def test_over_loopback_tcp(tcp_pair: tuple[TcpByteStream, TcpByteStream]) -> None:
    client, srv = tcp_pair

    async def dialer() -> bytes:
        assert await select_outbound(client, ["/a", NOISE], timeout=5) == NOISE
        # A second negotiation on the same pipe (like the muxer after security).
        lazy = await select_outbound_lazy(client, ECHO, timeout=5)
        await lazy.write(b"payload")
        return await read_exactly(lazy, 7)

    async def listener() -> None:
        assert await select_inbound(srv, [NOISE], timeout=5) == NOISE
        assert await select_inbound(srv, [ECHO], timeout=5) == ECHO
        await srv.write((await read_exactly(srv, 7)).upper())

    async with asyncio.timeout(10):
        got, _ = await asyncio.gather(dialer(), listener())
    assert got == b"PAYLOAD"
