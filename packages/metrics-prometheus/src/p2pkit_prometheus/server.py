"""A minimal HTTP/1.1 endpoint for the exposition, on the host's asyncio loop.

Why not ``prometheus_client.start_http_server``: it serves from a thread, so the host's
collectors (which read the connection table) would run concurrently with the loop that
changes it, and it cannot be awaited closed with the host.  This server answers
``GET``/``HEAD`` of one path with ``Connection: close``; requests are bounded in size
and time, so a stray client cannot hold it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

#: Seconds a client has to send its request head.
REQUEST_TIMEOUT = 10.0
#: At most this many header lines per request (each at most the reader's 64 KiB limit).
MAX_HEADERS = 100

Exposition = Callable[[str], tuple[bytes, str]]


class MetricsServer:
    """Serves ``exposition(accept_header) -> (body, content_type)`` at ``path``."""

    def __init__(self, exposition: Exposition, path: str = "/metrics") -> None:
        self.exposition = exposition
        self.path = path
        self._server: asyncio.Server | None = None
        self._clients: set[asyncio.Task[None]] = set()
        self.url: str | None = None

    async def start(self, host: str, port: int) -> None:
        self._server = await asyncio.start_server(self._serve, host, port)
        bound = self._server.sockets[0].getsockname()
        shown = f"[{bound[0]}]" if ":" in bound[0] else bound[0]
        self.url = f"http://{shown}:{bound[1]}{self.path}"

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        for task in list(self._clients):
            task.cancel()
        if self._clients:
            await asyncio.wait(list(self._clients))
        await server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._clients.add(task)
        try:
            status, body, ctype, head_only = await self._respond(reader)
            head = (
                f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            )
            writer.write(head.encode("latin-1") + (b"" if head_only else body))
            async with asyncio.timeout(REQUEST_TIMEOUT):
                await writer.drain()
        except (OSError, TimeoutError, ValueError, asyncio.IncompleteReadError):
            pass  # the client went away or misbehaved: nothing to answer
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
            if task is not None:
                self._clients.discard(task)

    async def _respond(self, reader: asyncio.StreamReader) -> tuple[str, bytes, str, bool]:
        text = "text/plain; charset=utf-8"
        async with asyncio.timeout(REQUEST_TIMEOUT):
            request = (await reader.readline()).decode("latin-1").split()
            accept = ""
            for _ in range(MAX_HEADERS):
                line = await reader.readline()
                if line in (b"\r\n", b"\n", b""):
                    break
                name, _, value = line.decode("latin-1").partition(":")
                if name.strip().lower() == "accept":
                    accept = value.strip()
            else:
                return "431 Request Header Fields Too Large", b"", text, False
        if len(request) != 3:
            return "400 Bad Request", b"bad request\n", text, False
        method, target, _ = request
        if method not in ("GET", "HEAD"):
            return "405 Method Not Allowed", b"GET or HEAD only\n", text, False
        if target.split("?", 1)[0] != self.path:
            return "404 Not Found", f"metrics are at {self.path}\n".encode(), text, False
        body, ctype = self.exposition(accept)
        return "200 OK", body, ctype, method == "HEAD"


__all__ = ["MetricsServer"]
