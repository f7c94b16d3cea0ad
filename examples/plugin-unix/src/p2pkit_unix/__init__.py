"""p2pkit_unix: a p2pkit transport for ``/unix/<path>`` multiaddrs (Unix domain sockets).

An example of a third-party plugin.  The byte pipe (receive buffer, pull and push
modes, flow control, half-close, graceful close, reset) is the core's
:class:`p2pkit.stream_socket.StreamSocketConnection`; this module only maps addresses
and calls asyncio's ``create_unix_connection`` / ``create_unix_server``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from multiaddr import Multiaddr

from p2pkit.abc import ConnectionHandler, Listener, RawConnection, Transport
from p2pkit.errors import AddressError, DialError, TransportError
from p2pkit.plugins.spec import Components, PluginSpec, hookimpl
from p2pkit.stream_socket import (
    ListenerSet,
    StreamSocketConnection,
    StreamSocketOptions,
    dial_stream,
    listen_stream,
)

__all__ = ["UnixConnection", "UnixTransport", "create", "socket_path"]


def socket_path(addr: Multiaddr) -> str:
    """The socket's path; a trailing ``/p2p/<peer id>`` is not part of it."""
    if not is_unix(addr):
        raise AddressError(f"not a /unix address: {addr}")
    path: str = addr.value_for_protocol("unix")
    return path.split("/p2p/", 1)[0]


def is_unix(addr: Multiaddr) -> bool:
    return str(addr).startswith("/unix/")


class UnixConnection(StreamSocketConnection):
    """A raw connection over a Unix domain stream socket."""

    transport_name = "unix"

    def _to_multiaddr(self, sockaddr: Any) -> Multiaddr | None:
        # An unbound (client) socket has the name "": no address to report.
        return Multiaddr("/unix" + sockaddr) if isinstance(sockaddr, str) and sockaddr else None


class UnixTransport(Transport):
    """Dials and listens on ``/unix/<absolute path>``."""

    name = "unix"

    def __init__(self, options: StreamSocketOptions | None = None) -> None:
        self.options = options or StreamSocketOptions()
        self._listeners = ListenerSet()

    def can_dial(self, addr: Multiaddr) -> bool:
        return is_unix(addr)

    def can_listen(self, addr: Multiaddr) -> bool:
        return is_unix(addr)

    async def dial(self, addr: Multiaddr, *, timeout: float | None = None) -> RawConnection:
        conn = UnixConnection(self.options, is_initiator=True)
        connect = asyncio.get_running_loop().create_unix_connection
        try:
            async with asyncio.timeout(timeout or self.options.dial_timeout):
                return await dial_stream(conn, connect, socket_path(addr))
        except OSError as exc:  # refused, missing file, timeout (TimeoutError)
            raise DialError(f"cannot dial {addr}", [(addr, exc)]) from exc

    async def listen(self, addr: Multiaddr, handler: ConnectionHandler) -> Listener:
        path = socket_path(addr)
        opts = self.options

        def make() -> UnixConnection:
            return UnixConnection(opts, is_initiator=False)

        serve = asyncio.get_running_loop().create_unix_server
        try:
            server = await listen_stream(make, handler, serve, path, backlog=opts.backlog)
        except OSError as exc:
            raise TransportError(f"cannot listen on {addr}: {exc}") from exc
        return self._listeners.track(server, [Multiaddr("/unix" + path)])

    async def close(self) -> None:
        await self._listeners.close()


def create(components: Components, options: StreamSocketOptions) -> Transport:
    """The plugin's factory (one name for every p2pkit plugin)."""
    return UnixTransport(options)


@hookimpl
def p2pkit_transports() -> list[PluginSpec[Transport]]:
    return [
        PluginSpec(
            kind="transport",
            name="unix",
            factory=create,
            options=StreamSocketOptions,
            provides=("unix",),
            description="Unix domain sockets (/unix/<path>)",
        )
    ]
