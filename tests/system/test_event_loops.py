"""``event_loop = "asyncio" | "uvloop"``: the setting, its errors, and the real stack
(TCP + Noise + Yamux: ping, echo, perf) on each loop over loopback."""

from __future__ import annotations

import hashlib
import os
import sys

import pytest

from p2pkit.builder import HostBuilder
from p2pkit.config import load_config
from p2pkit.errors import ConfigError
from p2pkit.host import Host
from p2pkit.loops import check_event_loop, loop_factory, run, running_loop_name
from p2pkit.protocols.echo import PROTOCOL_ID as ECHO
from p2pkit.protocols.perf import PROTOCOL_ID as PERF
from p2pkit.protocols.perf import perf
from p2pkit.protocols.ping import PROTOCOL_ID as PING
from p2pkit.protocols.ping import ping


def builder() -> HostBuilder:
    return HostBuilder().transport("tcp").security("noise").muxer("yamux")


async def exchange(client: Host, server: Host) -> dict[str, object]:
    conn = await client.connect(str(server.addrs_with_peer_id[0]))
    rtts = await ping(await conn.new_stream([PING], lazy=True), 3)
    stream = await conn.new_stream([ECHO])
    payload = os.urandom(300_000)
    await stream.write(payload)
    await stream.close_write()
    back = b""
    while chunk := await stream.read():
        back += chunk
    result = await perf(await conn.new_stream([PERF]), 2_000_000, 3_000_000)
    return {
        "loop": running_loop_name(),
        "rtts": rtts,
        "echo": hashlib.sha256(back).digest() == hashlib.sha256(payload).digest(),
        "perf": (result.upload_bytes, result.download_bytes),
        "stack": (conn.security_protocol, conn.muxer_protocol),
    }


@pytest.mark.parametrize("name", ["asyncio", "uvloop"])
def test_ping_echo_perf_on_each_loop(name: str) -> None:
    server = builder().listen("/ip4/127.0.0.1/tcp/0").option(enable_echo=True, enable_perf=True)

    async def main(client: Host) -> dict[str, object]:
        async with server.build() as srv:
            return await exchange(client, srv)

    got = builder().event_loop(name).run(main)
    assert got["loop"] == name
    assert got["echo"] is True and len(got["rtts"]) == 3  # type: ignore[arg-type]
    assert got["perf"] == (2_000_000, 3_000_000)
    assert got["stack"] == ("/noise", "/yamux/1.0.0")


def test_setting_in_config_and_builder() -> None:
    assert load_config({}).event_loop == "asyncio"
    assert load_config({"event_loop": "uvloop"}).event_loop == "uvloop"
    assert builder().event_loop("uvloop").config().event_loop == "uvloop"
    with pytest.raises(ConfigError, match="event_loop must be one of asyncio, uvloop"):
        load_config({"event_loop": "trio"})
    with pytest.raises(ConfigError, match="event_loop must be one of"):
        check_event_loop(3)


def test_uvloop_missing_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # as if not installed
    hint = r'pip install "p2pkit\[uvloop\]"'
    with pytest.raises(ConfigError, match=hint):
        load_config({"event_loop": "uvloop"})
    with pytest.raises(ConfigError, match=hint):
        loop_factory("uvloop")

    async def never() -> None:
        raise AssertionError("must not run")

    with pytest.raises(ConfigError, match=hint):
        run(never(), "uvloop")
    assert run(_loop_name(), "asyncio") == "asyncio"  # the default needs nothing


async def _loop_name() -> str:
    return running_loop_name()
