"""Host lifecycle on every transport: a program that never stops its hosts still exits,
a stop ends the dials in flight, and a read it cuts short is an error, not an EOF.

A program that ends without stopping its hosts still exits.

``asyncio.run`` cancels every task left when its coroutine ends (here: with an error,
the hosts never stopped) and waits for them.  The task serving a connection used to
answer its cancellation by waiting for the connection to close, which nobody would do:
the program hung at exit, on every transport.  Run as a real program in a subprocess,
because that shutdown is ``asyncio.run``'s own.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import pytest
from multiaddr import Multiaddr

from p2pkit.builder import HostBuilder
from p2pkit.crypto import generate_private_key
from p2pkit.errors import ConnectionClosed
from p2pkit.peer import PeerId

PROGRAM = textwrap.dedent(
    """
    import asyncio, sys
    from multiaddr import Multiaddr
    from p2pkit.builder import HostBuilder
    from p2pkit.protocols.echo import PROTOCOL_ID as ECHO

    LISTEN = sys.argv[1]

    def builder():
        return (
            HostBuilder().transport("tcp").transport("quic").transport("websocket")
            .security("noise").muxer("yamux").option(enable_echo=True)
        )

    async def main():
        listener = await builder().listen(LISTEN).build().start()
        dialer = await builder().build().start()
        addr = Multiaddr(f"{listener.listen_addrs[0]}/p2p/{listener.peer_id}")
        conn = await dialer.connect(addr)
        stream = await conn.new_stream(ECHO)  # a stream left open on both sides
        await stream.write(b"hello")
        assert await stream.readexactly(5) == b"hello"
        print("CONNECTED", conn.remote_addr, flush=True)
        raise RuntimeError("the application fails; nobody stops the hosts")

    asyncio.run(main())
    """
)


@pytest.mark.parametrize(
    "listen",
    ["/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1", "/ip4/127.0.0.1/tcp/0/ws"],
    ids=["tcp", "quic", "websocket"],
)
def test_program_exits_with_its_error_when_hosts_are_not_stopped(listen: str) -> None:
    try:
        done = subprocess.run(
            [sys.executable, "-c", PROGRAM, listen], capture_output=True, text=True, timeout=60
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"the program hung at exit (output: {exc.stdout!r} {exc.stderr!r})")
    assert "CONNECTED" in done.stdout, done.stderr
    assert done.returncode == 1
    assert "RuntimeError: the application fails" in done.stderr


@pytest.fixture(params=["tcp", "quic", "websocket"])
def silent_peer(request: pytest.FixtureRequest) -> Iterator[Multiaddr]:
    """An address whose peer never answers a handshake: a TCP socket whose connections
    wait in the backlog (the kernel completes them; nobody speaks), or a UDP socket that
    reads nothing."""
    quic = request.param == "quic"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM if quic else socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        if not quic:
            s.listen(8)
        port = s.getsockname()[1]
        peer = PeerId.from_public_key(generate_private_key().public_key)
        transport = {"tcp": "tcp/{}", "quic": "udp/{}/quic-v1", "websocket": "tcp/{}/ws"}
        where = transport[request.param].format(port)
        yield Multiaddr(f"/ip4/127.0.0.1/{where}/p2p/{peer}")


async def test_stop_ends_the_dials_in_flight(silent_peer: Multiaddr) -> None:
    """A dial in flight when the host stops fails at once (ConnectionClosed), instead
    of running on past the stop until its own timeout (TCP and WebSocket did)."""
    host = (
        HostBuilder()
        .transport("tcp")
        .transport("quic")
        .transport("websocket")
        .security("noise")
        .muxer("yamux")
        .option(dial_timeout=30.0)
        .build()
    )
    await host.start()
    dial = asyncio.ensure_future(host.connect(silent_peer))
    await asyncio.sleep(0.2)
    assert not dial.done()
    async with asyncio.timeout(5):
        await host.stop()
        with pytest.raises(ConnectionClosed, match="host is stopping"):
            await dial
    with pytest.raises(ConnectionClosed):
        await host.connect(silent_peer)  # and no new dial starts


@pytest.mark.parametrize(
    ("stack", "listen"),
    [
        ("yamux", "/ip4/127.0.0.1/tcp/0"),
        ("mplex", "/ip4/127.0.0.1/tcp/0"),
        ("quic", "/ip4/127.0.0.1/udp/0/quic-v1"),
    ],
)
async def test_a_read_cut_by_its_own_host_stopping_is_an_error(stack: str, listen: str) -> None:
    """A stream read waiting when its own host stops raises ConnectionClosed("host is
    stopping"): it used to return EOF, which an application takes for the end of a
    complete reply.  A reply the peer had finished stays readable to its end."""

    def builder() -> HostBuilder:
        if stack == "quic":
            return HostBuilder().transport("quic")
        return HostBuilder().transport("tcp").security("noise").muxer(stack)

    server = await builder().listen(listen).build().start()
    client = await builder().build().start()
    try:

        async def slow(stream: object) -> None:
            await asyncio.sleep(10)  # answers nothing

        async def whole(stream: object) -> None:
            await stream.write(b"a complete reply")  # type: ignore[attr-defined]
            await stream.close_write()  # type: ignore[attr-defined]
            await asyncio.sleep(10)

        server.set_stream_handler("/slow/1", slow)
        server.set_stream_handler("/whole/1", whole)
        await client.connect(Multiaddr(f"{server.listen_addrs[0]}/p2p/{server.peer_id}"))
        waiting = await client.new_stream(server.peer_id, ["/slow/1"])
        finished = await client.new_stream(server.peer_id, ["/whole/1"])
        await finished.write(b"go")
        reader = asyncio.ensure_future(waiting.read())
        async with asyncio.timeout(5):
            await asyncio.sleep(0.2)  # the whole reply and its FIN arrive
            await client.stop()
            with pytest.raises(ConnectionClosed, match="host is stopping"):
                await reader
            parts = []
            while chunk := await finished.read():
                parts.append(chunk)
        assert b"".join(parts) == b"a complete reply"
    finally:
        await client.stop()
        await server.stop()
