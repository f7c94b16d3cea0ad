"""Closing a TCP connection whose peer sent FIN and then RST.

asyncio stops watching a socket once it has read EOF, so a later RST goes unnoticed;
``shutdown()`` then fails with ENOTCONN.  That failure must neither escape as an
untyped ``OSError`` nor leave the socket open (found by tests/system/test_fault_injection.py).
"""

from __future__ import annotations

import asyncio
import os
import socket
import struct

from multiaddr import Multiaddr

from p2pkit.errors import ConnectionClosed
from p2pkit_tcp import TcpTransport


async def _reset_after_eof() -> tuple[TcpTransport, socket.socket, object]:
    """A dialled connection whose peer has sent FIN, then RST (both seen by the kernel)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    transport = TcpTransport()
    raw = await transport.dial(Multiaddr(f"/ip4/127.0.0.1/tcp/{srv.getsockname()[1]}"), timeout=5)
    peer, _ = srv.accept()
    srv.close()
    peer.shutdown(socket.SHUT_WR)  # FIN
    async with asyncio.timeout(5):
        assert await raw.read() == b""  # EOF: asyncio stops reading the socket
    peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    peer.close()  # RST
    # Wait for the kernel to take the RST (a condition): in CLOSE_WAIT, Linux records
    # it as EPIPE (reading SO_ERROR clears it; the socket stays CLOSED).
    async with asyncio.timeout(5):
        while raw.get_socket_option(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
            await asyncio.sleep(0.01)
    return transport, peer, raw


def _open_sockets() -> int:
    return sum(
        os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
        for fd in os.listdir("/proc/self/fd")
        if os.path.exists(f"/proc/self/fd/{fd}")
    )


async def test_close_after_peer_reset_closes_the_socket() -> None:
    before = _open_sockets()
    transport, _, raw = await _reset_after_eof()
    assert _open_sockets() == before + 1
    await asyncio.wait_for(raw.close(), 5)  # type: ignore[attr-defined]
    async with asyncio.timeout(5):
        while _open_sockets() > before:
            await asyncio.sleep(0.01)
    await transport.close()


async def test_close_write_after_peer_reset_is_typed() -> None:
    transport, _, raw = await _reset_after_eof()
    try:
        try:
            await raw.close_write()  # type: ignore[attr-defined]
        except ConnectionClosed:
            pass  # typed: fine (an OSError here was the bug)
    finally:
        await asyncio.wait_for(raw.close(), 5)  # type: ignore[attr-defined]
        await transport.close()
