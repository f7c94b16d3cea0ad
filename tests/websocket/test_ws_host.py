"""Hosts over WebSocket: ping, echo, perf and identify over /ws (Noise + Yamux) and
/tls/ws (TLS + Mplex), and a TCP and a WebSocket listener in one host."""

from __future__ import annotations

import asyncio
import hashlib
import os

import pytest
from multiaddr import Multiaddr

from p2pkit.protocols.echo import PROTOCOL_ID as ECHO
from p2pkit.protocols.perf import PROTOCOL_ID as PERF
from p2pkit.protocols.perf import perf
from p2pkit.protocols.ping import PROTOCOL_ID as PING
from p2pkit.protocols.ping import ping

STACKS = [
    ("/ip4/127.0.0.1/tcp/0/ws", "noise", "yamux"),
    ("/ip4/127.0.0.1/tcp/0/tls/ws", "tls", "mplex"),
    ("/ip4/127.0.0.1/tcp/0/ws", "tls", "mplex"),
    ("/ip4/127.0.0.1/tcp/0/tls/ws", "noise", "yamux"),
    ("/ip4/127.0.0.1/tcp/0/ws", "plaintext", "yamux"),  # yamux's header + payload writes
    ("/ip4/127.0.0.1/tcp/0/ws", "plaintext", "mplex"),
]


@pytest.mark.parametrize(("listen", "security", "muxer"), STACKS)
async def test_ping_echo_perf_identify(make_ws_host, listen, security, muxer):
    a = await make_ws_host(security, muxer, listen=(listen,))
    b = await make_ws_host(security, muxer, listen=())
    addr = a.addrs_with_peer_id[0]
    assert "/ws/" in str(addr) and (("/tls/ws" in str(addr)) == ("/tls/" in listen))
    conn = await b.connect(addr)
    assert conn.peer == a.peer_id
    assert conn.muxer_protocol.startswith(f"/{muxer}/")
    rtts = await ping(await conn.new_stream(PING), 3)
    assert len(rtts) == 3 and all(r > 0 for r in rtts)

    payload = os.urandom(1 << 20)
    stream = await b.new_stream(a.peer_id, [ECHO])

    async def send() -> None:  # concurrently: the echo answers while we write
        await stream.write(payload)
        await stream.close_write()

    sender = asyncio.create_task(send())
    got = bytearray()
    while chunk := await stream.read():
        got += chunk
    await sender
    assert hashlib.sha256(got).digest() == hashlib.sha256(payload).digest()

    result = await perf(await conn.new_stream(PERF), 8_000_000, 8_000_000)
    assert result.upload_bytes == 8_000_000 and result.download_bytes == 8_000_000

    info = await b.identify.identify(conn)
    assert any(str(Multiaddr(x)).endswith("/ws") for x in info.listen_addrs)
    assert info.observed_addr is not None and str(Multiaddr(info.observed_addr)).endswith("/ws")


async def test_tcp_and_ws_listeners_in_one_host(make_ws_host):
    a = await make_ws_host(listen=("/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/tcp/0/ws"))
    addrs = [str(x) for x in a.addrs_with_peer_id]
    tcp = [x for x in addrs if "/ws" not in x]
    ws = [x for x in addrs if "/ws/" in x]
    assert len(tcp) == 1 and len(ws) == 1
    for target in (tcp[0], ws[0]):
        b = await make_ws_host(listen=())
        conn = await b.connect(target)
        assert str(conn.remote_addr).endswith("/ws") == ("/ws/" in target)
        assert len(await ping(await conn.new_stream(PING), 1)) == 1


async def test_legacy_wss_is_dialled_as_tls_ws(make_ws_host):
    a = await make_ws_host(listen=("/ip4/127.0.0.1/tcp/0/wss",))
    addr = str(a.addrs_with_peer_id[0])
    assert "/tls/ws/" in addr
    b = await make_ws_host(listen=())
    conn = await b.connect(addr.replace("/tls/ws/", "/wss/"))
    assert len(await ping(await conn.new_stream(PING), 1)) == 1


async def test_tls_ws_dial_rejects_an_untrusted_server(make_ws_host, certs, tmp_path):
    from p2pkit.builder import HostBuilder
    from p2pkit.errors import DialError
    from tests.websocket.certs import make_certs

    a = await make_ws_host(listen=("/ip4/127.0.0.1/tcp/0/tls/ws",))
    other = make_certs(tmp_path / "other")  # a CA that did not sign the server's cert
    host = (
        HostBuilder()
        .transport("websocket", ca_file=str(other.ca_file))
        .security("noise")
        .muxer("yamux")
        .build()
    )
    async with host:
        with pytest.raises(DialError):
            await host.connect(a.addrs_with_peer_id[0])


async def test_tls_ws_with_sni_name(make_ws_host):
    a = await make_ws_host(listen=("/ip4/127.0.0.1/tcp/0/tls/ws",))
    ma = Multiaddr(str(a.addrs_with_peer_id[0]).replace("/tls/ws", "/tls/sni/localhost/ws"))
    b = await make_ws_host(listen=())
    conn = await b.connect(ma)
    assert len(await ping(await conn.new_stream(PING), 1)) == 1


async def test_listening_on_the_unspecified_address(make_ws_host):
    """/ip4/0.0.0.0/tcp/0/ws: the host lists loopback and its own addresses, /ws kept
    (the expansion once wrote /ws/None, and listen_addrs raised)."""
    a = await make_ws_host(listen=("/ip4/0.0.0.0/tcp/0/ws",))
    addrs = [str(x) for x in a.addrs_with_peer_id]
    assert addrs and all("/ws/p2p/" in x for x in addrs), addrs
    loopback = next(x for x in a.addrs_with_peer_id if "/127.0.0.1/" in str(x))
    b = await make_ws_host(listen=())
    conn = await b.connect(loopback)
    assert len(await ping(await conn.new_stream(PING), 1)) == 1


async def _open_idle(port: int, n: int) -> list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    return [await asyncio.open_connection("127.0.0.1", port) for _ in range(n)]


async def _still_open(r: asyncio.StreamReader) -> bool:
    try:
        async with asyncio.timeout(0.3):
            return await r.read(1) != b""
    except TimeoutError:
        return True
    except ConnectionError:
        return False


@pytest.mark.parametrize("listen", ["/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/tcp/0/ws"])
async def test_sockets_still_upgrading_count_as_pending_connections(make_ws_host, listen):
    """A /ws socket is admitted when it is accepted, as a TCP one is: sockets that never
    finish their upgrade count against max_pending_inbound (they used to be uncounted
    until the upgrade, up to the process's file descriptors)."""
    host = await make_ws_host(listen=(listen,), max_pending_inbound=4)
    port = int(host.listen_addrs[0].value_for_protocol("tcp"))
    idle = await _open_idle(port, 10)
    try:
        await asyncio.sleep(0.5)
        assert sum(await asyncio.gather(*(_still_open(r) for r, _ in idle))) == 4
    finally:
        for _, w in idle:
            w.close()
    # Their places free again, a real peer gets in.
    other = await make_ws_host(listen=())
    async with asyncio.timeout(10):
        while True:
            try:
                conn = await other.connect(host.addrs_with_peer_id[0])
                break
            except Exception:  # the idle sockets' places may not be free yet
                await asyncio.sleep(0.1)
    assert len(await ping(await conn.new_stream(PING), 1)) == 1


async def test_a_gated_address_gets_no_upgrade_answer(make_ws_host):
    host = await make_ws_host(gater={"deny_cidrs": ["127.0.0.0/8"]})
    port = int(host.listen_addrs[0].value_for_protocol("tcp"))
    r, w = await asyncio.open_connection("127.0.0.1", port)
    w.write(
        b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    answer = b""
    try:
        async with asyncio.timeout(5):
            while chunk := await r.read(1024):  # reset or closed, never "101 Switching"
                answer += chunk
    except ConnectionResetError:
        pass
    finally:
        w.close()
    assert answer == b""
