"""A listener with Prometheus metrics, driven by real peers over loopback TCP, scraped
over HTTP with a real client and read with prometheus_client's parser.

The traffic covers every series family: a connection (handshake, identify), pings on a
stream kept open (the streams gauge), an echo (bytes per protocol), a connection the
resource manager refuses (a second one from the same peer), a handshake that fails (no
common security protocol), a dial that fails (a closed port), a subscriber that drops
events, and a connection-manager trim.  The endpoint must close with the host.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Awaitable, Callable

import pytest

from p2pkit.builder import HostBuilder
from p2pkit.host import Host
from p2pkit.host_metrics import SERIES
from p2pkit.protocols.echo import PROTOCOL_ID as ECHO
from p2pkit.protocols.ping import PING_SIZE
from p2pkit.protocols.ping import PROTOCOL_ID as PING
from tests.prometheus.scrape import Scrape, get, scrape

pytestmark = pytest.mark.timeout(60)

TCP = "/ip4/127.0.0.1/tcp/0"
STACK = {"transport": "tcp", "security": "/noise", "muxer": "/yamux/1.0.0"}
ECHO_BYTES = 100_000


def metrics_url(host: Host) -> str:
    assert host.metrics is not None and host.metrics.endpoint is not None
    return host.metrics.endpoint


async def wait_scrape(host: Host, ok: Callable[[Scrape], bool], timeout: float = 10) -> Scrape:
    """Scrape until ``ok(scrape)`` (bounded in time): the counts settle asynchronously."""
    async with asyncio.timeout(timeout):
        while True:
            result = await scrape(metrics_url(host))
            if ok(result):
                return result
            await asyncio.sleep(0.05)


async def until(check: Callable[[], bool], timeout: float = 10) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.02)


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def echo(host: Host, target: str, nbytes: int) -> bytes:
    stream = await host.new_stream(target, [ECHO])
    payload = os.urandom(nbytes)

    async def send() -> None:
        for i in range(0, nbytes, 16384):
            await stream.write(payload[i : i + 16384])
        await stream.close_write()

    async def receive() -> bytes:
        chunks = []
        while chunk := await stream.read():
            chunks.append(chunk)
        return b"".join(chunks)

    _, got = await asyncio.gather(send(), receive())
    await stream.close()
    assert got == payload
    return got


async def expect_failure(op: Awaitable[object]) -> None:
    with contextlib.suppress(Exception):
        await op


async def test_listener_metrics_over_http() -> None:
    listener = (
        HostBuilder()
        .listen(TCP)
        .security("noise")
        .muxer("yamux")
        .limits(max_connections_per_peer=1)
        .connection_manager(low_water=0, high_water=1000, grace_period=0.0)
        .option(enable_echo=True)
        .metrics("prometheus", address="127.0.0.1:0")
        .build()
    )
    client = (
        HostBuilder()
        .security("noise")
        .muxer("yamux")
        .metrics("prometheus", address="127.0.0.1:0")
        .build()
    )
    async with listener, client:
        target = str(listener.addrs_with_peer_id[0])
        slow = listener.events.subscribe(maxsize=1)  # never read: drops events

        # A connection, pings on a stream kept open (ping() would close it), an echo.
        stream = await client.new_stream(target, [PING])
        pings = 3
        for _ in range(pings):
            payload = os.urandom(PING_SIZE)
            await stream.write(payload)
            assert await stream.readexactly(PING_SIZE) == payload
        await echo(client, target, ECHO_BYTES)
        identify = listener.identify
        assert identify is not None
        await until(lambda: client.peer_id in identify.results)

        # Refused by the resource manager: a second connection from the same peer.
        twin = HostBuilder().identity(client.private_key).security("noise").muxer("yamux").build()
        # Fails the handshake: no security protocol in common.
        stranger = HostBuilder().security("plaintext").muxer("yamux").build()
        async with twin, stranger:
            await expect_failure(twin.connect(target))
            await expect_failure(stranger.connect(target))
        # A dial that fails: nothing listens there.
        await expect_failure(client.connect(f"/ip4/127.0.0.1/tcp/{closed_port()}"))

        got = await wait_scrape(
            listener,
            lambda s: (
                s.value("p2pkit_rcmgr_refusals_total") >= 1
                and s.value("p2pkit_handshake_failures_total") >= 1
            ),
        )
        conns = got.value("p2pkit_connections", direction="inbound", **STACK)
        assert conns == 1
        assert got.value("p2pkit_connections_opened_total", direction="inbound", **STACK) == 1
        # Two handshakes completed (the client's and its twin's, refused afterwards).
        assert got.value("p2pkit_handshake_duration_seconds_count", direction="inbound") == 2
        assert got.value("p2pkit_handshake_duration_seconds_bucket", le="+Inf") == 2
        assert got.value("p2pkit_handshake_failures_total", direction="inbound") == 1
        assert got.labels("p2pkit_rcmgr_refusals_total", "scope") == {"peer"}
        assert got.value("p2pkit_streams", protocol=PING, direction="inbound") == 1
        assert got.value("p2pkit_streams_opened_total", protocol=ECHO, direction="inbound") == 1
        assert got.value("p2pkit_stream_bytes_received_total", protocol=ECHO) == ECHO_BYTES
        assert got.value("p2pkit_stream_bytes_sent_total", protocol=ECHO) == ECHO_BYTES
        assert got.value("p2pkit_stream_bytes_received_total", protocol=PING) == pings * PING_SIZE
        assert got.value("p2pkit_identify_total", result="ok") >= 1
        dropped = sum(listener.events.dropped.values())
        assert dropped == slow.dropped >= 1
        assert got.value("p2pkit_event_bus_dropped_total") <= dropped
        # Every series the host declares is exported (the dashboard relies on it).
        assert {name for name in SERIES} <= got.names()

        # The client's side: its dials, and the stream it keeps open.
        mine = await scrape(metrics_url(client))
        assert mine.value("p2pkit_dial_attempts_total", transport="tcp") == 2
        assert mine.value("p2pkit_dial_failures_total") == 1
        assert mine.value("p2pkit_streams", protocol=PING, direction="outbound") == 1
        assert mine.value("p2pkit_stream_bytes_sent_total", protocol=ECHO) == ECHO_BYTES
        assert mine.value("p2pkit_handshake_duration_seconds_count", direction="outbound") == 1

        await stream.close()
        assert await listener.connmgr.trim() == 1  # the client's connection
        got = await wait_scrape(listener, lambda s: s.value("p2pkit_connections") == 0)
        assert got.value("p2pkit_connmgr_trimmed_connections_total") == 1
        assert got.value("p2pkit_event_bus_dropped_total") == sum(listener.events.dropped.values())
        slow.close()
        url = metrics_url(listener)

    assert listener.metrics is not None and listener.metrics.endpoint is None
    with pytest.raises(OSError):  # the endpoint closed with the host
        await get(url)


async def test_endpoint_answers_only_its_path() -> None:
    host = HostBuilder().metrics("prometheus", address="127.0.0.1:0", path="/m").build()
    async with host:
        url = metrics_url(host)
        assert url.endswith("/m")
        status, _, body = await get(url)
        assert status == 200 and "p2pkit_connections" in body
        assert (await get(url, "/metrics"))[0] == 404
        assert (await get(url, method="POST"))[0] == 405
        status, _, body = await get(url, method="HEAD")
        assert status == 200 and body == ""
