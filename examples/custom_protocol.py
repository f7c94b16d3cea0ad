"""A request/response protocol of your own: a key-value store, with a handler and a typed client.

    python examples/custom_protocol.py      # a server and a client host on loopback

The protocol, ``/p2pkit-example/kv/1.0.0``, one stream per request (libp2p's usual
request/response shape, as identify and ping do): the client writes one request and
closes its side, the server writes one response and closes.  Each message is a
length-prefixed (unsigned varint, as libp2p frames protobufs) JSON object.

What it shows: the *handler* (``KvServer.handle``, registered with
``set_stream_handler``) and the *typed client* (``KvClient``: ``put``, ``get``,
``delete`` with typed arguments and results, and a :class:`KvError` for the server's
refusals), both on :class:`Request` / :class:`Response` dataclasses, so neither side
handles bytes or JSON outside ``send`` and ``receive``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
from typing import Any, Literal

from p2pkit import HostBuilder, PeerId
from p2pkit.abc import MuxedStream
from p2pkit.host import Host
from p2pkit.varint import decode_uvarint, encode_uvarint

PROTOCOL = "/p2pkit-example/kv/1.0.0"
MAX_MESSAGE = 64 * 1024  # neither side reads a larger message
MAX_KEYS = 10_000  # the server holds at most this many keys
Op = Literal["put", "get", "delete"]


class KvError(Exception):
    """The server refused a request (its ``error`` text)."""


@dataclasses.dataclass(frozen=True)
class Request:
    op: Op
    key: str
    value: str | None = None


@dataclasses.dataclass(frozen=True)
class Response:
    ok: bool
    value: str | None = None
    error: str | None = None


# -- framing: one length-prefixed JSON message ------------------------------------------------


async def send(stream: MuxedStream, message: Request | Response) -> None:
    body = json.dumps(dataclasses.asdict(message)).encode()
    await stream.write(encode_uvarint(len(body)) + body)


async def receive(stream: MuxedStream) -> dict[str, Any]:
    prefix = b""
    decoded = None
    while decoded is None and len(prefix) < 9:  # decode_uvarint accepts up to 9 bytes
        prefix += await stream.readexactly(1)
        decoded = decode_uvarint(prefix)
    if decoded is None:
        raise KvError("length prefix too long")
    length = decoded[0]
    if length > MAX_MESSAGE:
        raise KvError(f"message of {length} bytes is over the {MAX_MESSAGE} limit")
    message = json.loads(await stream.readexactly(length))
    if not isinstance(message, dict):
        raise KvError("a message is a JSON object")
    return message


# -- the server: a handler ---------------------------------------------------------------------


class KvServer:
    """A key-value store served on ``PROTOCOL``."""

    def __init__(self, host: Host) -> None:
        self.data: dict[str, str] = {}
        host.set_stream_handler(PROTOCOL, self.handle)

    async def handle(self, stream: MuxedStream) -> None:
        try:
            request = Request(**await receive(stream))
            response = self.apply(request)
        except (KvError, TypeError, ValueError) as exc:  # malformed: say why, then close
            response = Response(ok=False, error=str(exc))
        await send(stream, response)
        await stream.close()

    def apply(self, request: Request) -> Response:
        if request.op == "get":
            value = self.data.get(request.key)
            if value is None:
                return Response(ok=False, error=f"no key {request.key!r}")
            return Response(ok=True, value=value)
        if request.op == "put":
            if request.value is None:
                return Response(ok=False, error="put needs a value")
            if request.key not in self.data and len(self.data) >= MAX_KEYS:
                return Response(ok=False, error="store is full")
            self.data[request.key] = request.value
            return Response(ok=True)
        if request.op == "delete":
            return Response(ok=self.data.pop(request.key, None) is not None)
        return Response(ok=False, error=f"unknown op {request.op!r}")


# -- the client: typed methods ----------------------------------------------------------------


class KvClient:
    """The store on ``peer``, as methods: one stream per call."""

    def __init__(self, host: Host, peer: PeerId | str) -> None:
        self.host = host
        self.peer = peer

    async def _call(self, request: Request) -> Response:
        stream = await self.host.new_stream(self.peer, [PROTOCOL])
        try:
            await send(stream, request)
            await stream.close_write()
            return Response(**await receive(stream))
        finally:
            await stream.close()

    async def put(self, key: str, value: str) -> None:
        response = await self._call(Request("put", key, value))
        if not response.ok:
            raise KvError(response.error)

    async def get(self, key: str) -> str | None:
        """The value, or None if the key is not there."""
        response = await self._call(Request("get", key))
        return response.value if response.ok else None

    async def delete(self, key: str) -> bool:
        """True if the key was there."""
        return (await self._call(Request("delete", key))).ok


async def demo() -> None:
    builder = HostBuilder().listen("/ip4/127.0.0.1/tcp/0")
    async with builder.build() as server_host, HostBuilder().build() as client_host:
        server = KvServer(server_host)
        address = str(server_host.addrs_with_peer_id[0])
        print(f"kv server on {address}")
        kv = KvClient(client_host, address)
        await kv.put("greeting", "hello")
        await kv.put("answer", "42")
        print(f"get greeting -> {await kv.get('greeting')!r}")
        print(f"get answer -> {await kv.get('answer')!r}")
        print(f"delete answer -> {await kv.delete('answer')}")
        print(f"get answer -> {await kv.get('answer')!r}")
        try:
            await kv.put("big", "x" * MAX_MESSAGE)
        except KvError as exc:
            print(f"put big -> refused: {exc}")
        print(f"server holds {sorted(server.data)}")


if __name__ == "__main__":
    if len(sys.argv) > 1:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    asyncio.run(demo())
