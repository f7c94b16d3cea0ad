"""Bad input over real sockets: each gets a bounded cost and a clean close, and the
listener keeps serving (a proper dial succeeds afterwards)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

import pytest
from multiaddr import Multiaddr

from p2pkit.abc import RawConnection
from p2pkit.errors import DialError
from p2pkit_websocket import WsOptions, WsTransport
from p2pkit_websocket.frames import OP_PING, OP_PONG, OP_TEXT, CloseReceived, FrameReader, Pong

UPGRADE = (
    b"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)
STEP = 10.0


class Server:
    def __init__(self, transport: WsTransport, addr: Multiaddr) -> None:
        self.transport = transport
        self.addr = addr
        self.accepted: list[RawConnection] = []

    @property
    def port(self) -> int:
        return int(self.addr.value_for_protocol("tcp"))

    async def check_still_serving(self) -> None:
        """A proper dial still upgrades and carries bytes both ways."""
        before = len(self.accepted)
        client = WsTransport()
        conn = await client.dial(self.addr, timeout=STEP)
        try:
            await conn.write(b"ping")
            async with asyncio.timeout(STEP):
                while len(self.accepted) == before:
                    await asyncio.sleep(0.01)
                server_side = self.accepted[-1]
                assert await server_side.read(4) == b"ping"
        finally:
            await conn.close()


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    options = WsOptions(handshake_timeout=0.5, max_message_size=64 * 1024, max_pings_per_second=20)
    transport = WsTransport(options)
    srv: Server

    def on_conn(conn: RawConnection) -> None:
        srv.accepted.append(conn)

    listener = await transport.listen(Multiaddr("/ip4/127.0.0.1/tcp/0/ws"), on_conn)
    srv = Server(transport, listener.addrs[0])
    yield srv
    for conn in srv.accepted:
        conn.reset()
    await transport.close()


_writers: list[asyncio.StreamWriter] = []


@pytest.fixture(autouse=True)
async def _close_clients() -> AsyncIterator[None]:
    """Close every raw client socket a test opened (no ResourceWarning)."""
    yield
    while _writers:
        w = _writers.pop()
        w.close()
        try:
            await w.wait_closed()
        except OSError:
            pass


async def _open(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    r, w = await asyncio.open_connection("127.0.0.1", port)
    _writers.append(w)
    return r, w


async def _upgraded(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    r, w = await _open(port)
    w.write(UPGRADE.replace(b"{path}", b"/"))
    async with asyncio.timeout(STEP):
        head = await r.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101 ")
    return r, w


def _frame(b0: int, payload: bytes, length: int | None = None) -> bytes:
    n = len(payload) if length is None else length
    if n < 126:
        head = bytes([b0, 0x80 | n])
    elif n < 65536:
        head = bytes([b0, 0x80 | 126]) + n.to_bytes(2, "big")
    else:
        head = bytes([b0, 0x80 | 127]) + n.to_bytes(8, "big")
    return head + b"\0\0\0\0" + payload  # zero mask: payload as is


async def _read_until_closed(r: asyncio.StreamReader) -> tuple[int | None, int]:
    """Read server frames until EOF: (close code, pongs seen).  Bounded by STEP."""
    reader = FrameReader(expect_masked=False, max_message_size=1 << 30)
    code, pongs = None, 0
    async with asyncio.timeout(STEP):
        while True:
            try:
                chunk = await r.read(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            for ev in reader.receive_data(memoryview(chunk)):
                if isinstance(ev, CloseReceived):
                    code = ev.code
                elif isinstance(ev, Pong):
                    pongs += 1
    return code, pongs


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (_frame(0x80 | 0x2, b"", length=1 << 20), 1009),  # message over max_message_size
        (_frame(0x80 | 0x2, b"", length=1 << 62), 1009),  # absurd length
        (_frame(0x80 | OP_TEXT, b"hello"), 1003),  # text frame
        (bytes([0x82, 0x01]) + b"x", 1002),  # unmasked client frame
    ],
)
async def test_bad_frames_get_a_close_code(server: Server, frame: bytes, code: int) -> None:
    r, w = await _upgraded(server.port)
    w.write(frame)
    got, _ = await _read_until_closed(r)
    assert got == code
    w.close()
    assert len(server.accepted) == 1 and server.accepted[0].closed
    await server.check_still_serving()


async def test_oversize_message_in_fragments(server: Server) -> None:
    r, w = await _upgraded(server.port)
    for _ in range(5):  # 5 x 16 KiB fragments > 64 KiB
        w.write(_frame(0x02 if _ == 0 else 0x00, os.urandom(16 * 1024)))
    got, _ = await _read_until_closed(r)
    assert got == 1009
    await server.check_still_serving()


async def test_ping_flood_gets_bounded_replies_then_a_close(server: Server) -> None:
    r, w = await _upgraded(server.port)
    n = 5000  # > 10 x max_pings_per_second (20) within a second
    w.write(_frame(0x80 | OP_PING, b"p") * n)
    code, pongs = await _read_until_closed(r)
    assert code == 1008
    assert pongs <= 2 * 20, pongs  # at most the rate (plus one window boundary)
    await server.check_still_serving()


async def test_pings_under_the_rate_are_answered(server: Server) -> None:
    r, w = await _upgraded(server.port)
    w.write(_frame(0x80 | OP_PING, b"hello"))
    reader = FrameReader(expect_masked=False, max_message_size=1 << 20)
    async with asyncio.timeout(STEP):
        events = []
        while not events:
            events = reader.receive_data(memoryview(await r.read(1024)))
    assert events == [Pong(b"hello")]
    assert OP_PONG == 0xA
    w.close()


async def test_handshake_that_never_finishes_is_dropped(server: Server) -> None:
    r, w = await _open(server.port)
    w.write(b"GET / HTTP/1.1\r\nHost: x\r\n")  # and nothing more
    loop = asyncio.get_running_loop()
    start = loop.time()
    async with asyncio.timeout(STEP):
        try:
            assert await r.read() == b""
        except ConnectionResetError:
            pass
    assert loop.time() - start < 5  # handshake_timeout is 0.5 s
    assert server.accepted == []
    await server.check_still_serving()


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (UPGRADE.replace(b"{path}", b"/other"), b"404"),
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"426"),  # plain HTTP, no upgrade
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", b"405"),
        (b"\x16\x03\x01garbage\r\n\r\n", b"400"),  # a TLS hello or noise: not HTTP
        (b"GET / HTTP/1.1\r\n" + b"X-Big: " + b"a" * 20_000 + b"\r\n\r\n", b"431"),
        (UPGRADE.replace(b"{path}", b"/").replace(b"Host: 127.0.0.1\r\n", b""), b"400"),
        (UPGRADE.replace(b"{path}", b"/").replace(b"Version: 13", b"Version: 8"), b"400"),
        # the header twice (found by fuzz/: it used to raise inside the upgrade)
        (UPGRADE.replace(b"{path}", b"/").replace(b"Version: 13", b"Version: 8\r\nSec-WebSocket-Version: 13"), b"400"),  # noqa: E501
    ],
)
async def test_refused_requests_get_a_status_and_a_close(
    server: Server, request_bytes: bytes, status: bytes
) -> None:
    r, w = await _open(server.port)
    w.write(request_bytes)
    async with asyncio.timeout(STEP):
        answer = await r.read()  # until the server closes
    assert answer.split(b" ", 2)[1] == status, answer[:200]
    if b"Version: 8" in request_bytes:  # RFC 6455 4.4: the versions we speak
        assert b"\r\nSec-WebSocket-Version: 13\r\n" in answer
    assert server.accepted == []
    w.close()
    await server.check_still_serving()


async def test_a_dial_to_a_server_that_never_upgrades_fails_in_time() -> None:
    """Without a dial timeout the upgrade wait is still bounded (handshake_timeout)."""
    silent = await asyncio.start_server(lambda r, w: _writers.append(w), "127.0.0.1", 0)
    port = silent.sockets[0].getsockname()[1]
    try:
        client = WsTransport(WsOptions(handshake_timeout=0.3))
        with pytest.raises(DialError, match="no WebSocket upgrade"):
            async with asyncio.timeout(STEP):
                await client.dial(Multiaddr(f"/ip4/127.0.0.1/tcp/{port}/ws"))
    finally:
        silent.close()
        await silent.wait_closed()
