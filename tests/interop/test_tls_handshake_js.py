"""TLS handshake interop with js-libp2p's ``@libp2p/tls`` (the pinned peer in tests/interop/js).

Only the security layer is checked here (certificates both ways, PeerIds, ALPN early
muxer selection); full-stack interop lives in tests/interop.  Skipped when Node.js or
the js peer's ``node_modules`` are missing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from multiaddr import Multiaddr

from p2pkit.abc import RawConnection, SecureConnection
from p2pkit.crypto import generate_private_key
from p2pkit.multistream.aio import select_inbound, select_outbound
from p2pkit.peer import PeerId
from p2pkit_tls import TlsSecurity

JS_DIR = Path(__file__).resolve().parent / "js"
YAMUX, MPLEX = "/yamux/1.0.0", "/mplex/6.7.0"

# The interop conftest installs the js peer (npm ci) once per session, skips without
# Node.js locally and fails in CI, like every other interop test.
pytestmark = [pytest.mark.interop]


@contextlib.asynccontextmanager
async def js_process(*args: str) -> AsyncIterator[asyncio.subprocess.Process]:
    proc = await asyncio.create_subprocess_exec(
        "node",
        str(JS_DIR / "peer.mjs"),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.terminate()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(proc.communicate(), 10)
        if proc.returncode is None:  # pragma: no cover - js did not stop
            proc.kill()
            await proc.communicate()


@pytest.mark.parametrize(
    ("key_type", "js_muxers", "our_muxers", "expected"),
    [
        ("ed25519", "yamux,mplex", [YAMUX, MPLEX], YAMUX),
        ("secp256k1", "yamux,mplex", [MPLEX, YAMUX], MPLEX),  # js picks the client's first
        ("rsa", "yamux", [], None),  # only "libp2p" offered: muxer via multistream-select
    ],
)
async def test_we_dial_js(
    key_type: str, js_muxers: str, our_muxers: list[str], expected: str | None
) -> None:
    from p2pkit_tcp import TcpOptions, TcpTransport

    listen = ["listen", "--listen", "/ip4/127.0.0.1/tcp/0", "--security", "tls"]
    async with js_process(*listen, "--muxer", js_muxers) as proc:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode().split()
        assert line and line[0] == "LISTEN", line
        addr, _, peer = line[1].partition("/p2p/")
        js_peer = PeerId.from_string(peer)
        transport = TcpTransport(TcpOptions())
        raw = await transport.dial(Multiaddr(addr))
        conn: SecureConnection | None = None
        try:
            assert await select_outbound(raw, ["/tls/1.0.0"], timeout=10) == "/tls/1.0.0"
            sec = TlsSecurity(generate_private_key(key_type))
            conn = await sec.secure_outbound(raw, js_peer, our_muxers)
            assert conn.remote_peer == js_peer
            assert conn.early_muxer == expected
            if expected is None:
                # js accepted our certificate if it answers multistream-select inside TLS.
                assert await select_outbound(conn, [YAMUX], timeout=10) == YAMUX
            else:
                # js accepted our certificate: it speaks the muxer (yamux ping / mplex open).
                assert len(await asyncio.wait_for(conn.readexactly(2), 10)) == 2
        finally:
            if conn is not None:
                await conn.close()
            else:
                raw.reset()
            await transport.close()


@pytest.mark.parametrize(("our_muxers", "expected"), [([YAMUX, MPLEX], YAMUX), ([MPLEX], MPLEX)])
async def test_js_dials_us(our_muxers: list[str], expected: str) -> None:
    from p2pkit_tcp import TcpOptions, TcpTransport

    transport = TcpTransport(TcpOptions())
    sec = TlsSecurity(generate_private_key("ed25519"))
    result: asyncio.Future[SecureConnection] = asyncio.get_running_loop().create_future()
    tasks: list[asyncio.Task[None]] = []

    async def handle(raw: RawConnection) -> None:
        try:
            await select_inbound(raw, ["/tls/1.0.0"], timeout=10)
            result.set_result(await sec.secure_inbound(raw, our_muxers))
        except Exception as exc:
            raw.reset()
            if not result.done():
                result.set_exception(exc)

    listener = await transport.listen(
        Multiaddr("/ip4/127.0.0.1/tcp/0"),
        lambda raw: tasks.append(asyncio.create_task(handle(raw))),
    )
    target = f"{listener.addrs[0]}/p2p/{sec.local_peer}"
    try:
        async with js_process(
            "ping", target, "--security", "tls", "--muxer", "yamux,mplex", "--timeout", "10"
        ):
            conn = await asyncio.wait_for(result, 30)
            try:
                assert conn.early_muxer == expected
                assert conn.remote_peer != sec.local_peer
                # js accepted our certificate and speaks the muxer to us.
                assert len(await asyncio.wait_for(conn.readexactly(2), 10)) == 2
            finally:
                await conn.close()
    finally:
        await listener.close()
        await transport.close()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
