"""mplex inside the full stack: two hosts on loopback, each security protocol."""

from __future__ import annotations

import asyncio
import os

import pytest

from p2pkit.config import load_config
from p2pkit.host import Host
from p2pkit.protocols.echo import PROTOCOL_ID as ECHO


@pytest.mark.parametrize("security", ["noise", "tls", "plaintext"])
async def test_echo_many_streams_over_mplex(security: str) -> None:
    def host(listen: list[str]) -> Host:
        return Host(
            load_config(
                {"listen": listen, "security": [security], "muxers": ["mplex"]},
                overrides={"enable_echo": True},
            )
        )

    server, client = host(["/ip4/127.0.0.1/tcp/0"]), host([])
    async with server, client, asyncio.timeout(30):
        conn = await client.connect(server.addrs_with_peer_id[0])
        assert conn.muxer_protocol == "/mplex/6.7.0"

        async def one(i: int) -> None:
            payload = os.urandom(1000 * i + 1)
            stream = await conn.new_stream([ECHO])
            await stream.write(payload)
            await stream.close_write()
            got = b""
            while chunk := await stream.read():
                got += chunk
            assert got == payload

        await asyncio.gather(*(one(i) for i in range(20)))
