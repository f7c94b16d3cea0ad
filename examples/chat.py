"""Chat between two peers: one stream each way, over TCP + Noise + Yamux.

    python examples/chat.py                  # both peers in this process: a short chat
    python examples/chat.py listen           # prints its address, then chats on stdin
    python examples/chat.py dial <address>   # in another terminal: the other side

What it shows: hosts built with ``HostBuilder``, a protocol handler
(``set_stream_handler``), and ``new_stream`` to a peer, by address or, once connected,
by peer id.  Each peer *sends* on a stream it opened and *receives* on the stream the
other one opened: a stream is two-way, but one per direction keeps each side's code
simple (write lines until EOF; read lines until EOF).  When your input ends (Ctrl-D),
your stream is closed; the chat ends when both are.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Iterable

from p2pkit import HostBuilder, PeerId
from p2pkit.abc import MuxedStream
from p2pkit.host import Host

PROTOCOL = "/p2pkit-example/chat/1.0.0"
MAX_LINE = 4096  # a peer cannot make us buffer more than this per line


def build_host(name: str, *listen: str) -> Host:
    """A host with the default stack; ``name`` goes into identify's agent version."""
    return HostBuilder().listen(*listen).option(agent_version=f"chat-example/{name}").build()


async def lines_of(stream: MuxedStream) -> AsyncIterator[str]:
    """The lines a peer writes on ``stream``, until it closes its side."""
    pending = b""
    while chunk := await stream.read(MAX_LINE):
        pending += chunk
        *complete, pending = pending.split(b"\n")
        for line in complete:
            yield line.decode(errors="replace")
        if len(pending) > MAX_LINE:
            raise ValueError("line too long")
    if pending:
        yield pending.decode(errors="replace")


class Chat:
    """One side of the chat: prints what arrives, sends what it is given."""

    def __init__(self, host: Host, other: str) -> None:
        self.host = host
        self.other = other  # how lines from the other side are labelled
        self.peer: asyncio.Future[PeerId] = asyncio.get_running_loop().create_future()
        self.received_all = asyncio.Event()
        host.set_stream_handler(PROTOCOL, self.receive)

    async def receive(self, stream: MuxedStream) -> None:
        """The handler: the other side's stream, read line by line."""
        conn = self.host.connection_of(stream)
        if conn is not None and not self.peer.done():
            self.peer.set_result(conn.peer)  # the listener learns who to answer
        async for line in lines_of(stream):
            print(f"{self.other}: {line}", flush=True)
        await stream.close()
        self.received_all.set()

    async def send(self, target: str | PeerId, lines: AsyncIterator[str] | Iterable[str]) -> None:
        """Open our stream to ``target`` and write ``lines`` on it, then close it."""
        stream = await self.host.new_stream(target, [PROTOCOL])
        if isinstance(lines, AsyncIterator):
            async for line in lines:
                await stream.write(f"{line}\n".encode())
        else:
            for line in lines:
                await stream.write(f"{line}\n".encode())
        await stream.close_write()


async def stdin_lines() -> AsyncIterator[str]:
    """Lines typed on stdin, read without blocking the event loop."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        yield line.decode().rstrip("\n")


async def demo() -> None:
    """Alice listens, Bob dials; each says two things on its own stream."""
    async with build_host("alice", "/ip4/127.0.0.1/tcp/0") as alice_host:
        async with build_host("bob") as bob_host:
            alice, bob = Chat(alice_host, "bob"), Chat(bob_host, "alice")
            address = str(alice_host.addrs_with_peer_id[0])
            print(f"alice listens on {address}")
            await bob.send(address, ["hi alice, bob here", "this is my stream to you"])
            await alice.send(await alice.peer, ["hello bob!", "and this one is mine to you"])
            await asyncio.wait_for(
                asyncio.gather(alice.received_all.wait(), bob.received_all.wait()), 10
            )
            conn = bob_host.connections()[0]
            print(f"chat over {conn.security_protocol} + {conn.muxer_protocol}: done")


async def listen() -> None:
    async with build_host("listener", "/ip4/127.0.0.1/tcp/0") as host:
        chat = Chat(host, "peer")
        print(f"LISTEN {host.addrs_with_peer_id[0]}", flush=True)
        print("waiting for a peer (python examples/chat.py dial <address>)...", flush=True)
        peer = await chat.peer
        await chat.send(peer, stdin_lines())
        await chat.received_all.wait()


async def dial(address: str) -> None:
    async with build_host("dialer") as host:
        chat = Chat(host, "peer")
        await chat.send(address, stdin_lines())
        await chat.received_all.wait()


def main(argv: list[str]) -> int:
    if not argv:
        asyncio.run(demo())
    elif argv[0] == "listen" and len(argv) == 1:
        asyncio.run(listen())
    elif argv[0] == "dial" and len(argv) == 2:
        asyncio.run(dial(argv[1]))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
