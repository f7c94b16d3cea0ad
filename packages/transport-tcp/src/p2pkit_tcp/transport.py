"""The TCP transport: dialing and listening on TCP multiaddrs."""

from __future__ import annotations

import asyncio
import functools
import logging
import socket
from collections.abc import Callable

from multiaddr import Multiaddr
from p2pkit.abc import ConnectionHandler, Listener, RawConnection, Transport
from p2pkit.errors import AddressError, DialError, TransportError

from p2pkit_tcp.addresses import TcpTarget, from_sockaddr, is_tcp, parse
from p2pkit_tcp.connection import TcpConnection, TcpProtocol
from p2pkit_tcp.options import TcpOptions

log = logging.getLogger(__name__)


class TcpListener(Listener):
    """One ``asyncio.Server`` (one socket, or one per resolved address for ``/dns*``)."""

    def __init__(self, server: asyncio.Server, on_close: Callable[[TcpListener], None]) -> None:
        self._server = server
        self._on_close = on_close
        addrs = (from_sockaddr(s.getsockname()) for s in server.sockets)
        self._addrs = [a for a in addrs if a is not None]

    @property
    def addrs(self) -> list[Multiaddr]:
        return list(self._addrs)

    async def close(self) -> None:
        """Stop accepting now; accepted connections live on.

        ``Server.wait_closed`` is not awaited on purpose: on Python 3.12+ it also waits
        for every accepted connection to end.
        """
        if self._server.is_serving() or self._server.sockets:
            self._server.close()
        self._on_close(self)

    def __repr__(self) -> str:
        return f"<TcpListener {[str(a) for a in self._addrs]}>"


class TcpTransport(Transport):
    """Dials and listens on ``/ip4|ip6|dns|dns4|dns6/.../tcp/<port>`` (see the README)."""

    name = "tcp"

    def __init__(self, options: TcpOptions | None = None) -> None:
        self.options = options or TcpOptions()
        self._listeners: set[TcpListener] = set()

    def can_dial(self, addr: Multiaddr) -> bool:
        return is_tcp(addr)

    def can_listen(self, addr: Multiaddr) -> bool:
        return is_tcp(addr)

    # -- dialing -----------------------------------------------------------------------

    async def dial(self, addr: Multiaddr, *, timeout: float | None = None) -> RawConnection:
        target = parse(addr)
        if target.port == 0:
            raise AddressError(f"cannot dial port 0: {addr}")
        limit = self.options.dial_timeout if timeout is None else timeout
        try:
            async with asyncio.timeout(limit):
                return await self._dial(addr, target)
        except TimeoutError:
            raise DialError(f"dial {addr} timed out after {limit} s") from None

    async def _dial(self, addr: Multiaddr, target: TcpTarget) -> RawConnection:
        loop = asyncio.get_running_loop()
        hosts = await self._resolve(addr, target)
        errors: list[tuple[object, BaseException]] = []
        for family, host in hosts:
            conn = TcpConnection(self.options, is_initiator=True)
            try:
                await loop.create_connection(
                    functools.partial(TcpProtocol, conn),
                    host,
                    target.port,
                    family=family,
                )
            except TimeoutError:
                raise  # asyncio.timeout's own exit, or a kernel ETIMEDOUT: both are timeouts
            except OSError as exc:
                errors.append((f"{host}:{target.port}" if target.needs_resolution else addr, exc))
                continue
            return conn
        raise DialError(f"cannot dial {addr}", errors)

    async def _resolve(
        self, addr: Multiaddr, target: TcpTarget
    ) -> list[tuple[socket.AddressFamily, str]]:
        if not target.needs_resolution:
            return [(target.family, target.host)]
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(
                target.host, target.port, family=target.family, type=socket.SOCK_STREAM
            )
        except OSError as exc:
            raise DialError(f"cannot resolve {addr}", [(addr, exc)]) from exc
        seen: list[tuple[socket.AddressFamily, str]] = []
        for family, _type, _proto, _canon, sockaddr in infos:
            item = (family, str(sockaddr[0]))
            if family in (socket.AF_INET, socket.AF_INET6) and item not in seen:
                seen.append(item)
        if not seen:
            raise DialError(f"{addr}: name resolved to no usable address")
        return seen

    # -- listening ---------------------------------------------------------------------

    async def listen(self, addr: Multiaddr, handler: ConnectionHandler) -> Listener:
        target = parse(addr)
        loop = asyncio.get_running_loop()
        options = self.options

        def on_made(conn: TcpConnection) -> None:
            # A failing handler must not take the listener down: drop that connection.
            try:
                handler(conn)
            except Exception:
                log.exception("tcp: connection handler failed for %r; resetting it", conn)
                conn.reset()

        def factory() -> TcpProtocol:
            return TcpProtocol(TcpConnection(options, is_initiator=False), on_made)

        try:
            server = await loop.create_server(
                factory,
                target.host,
                target.port,
                family=target.family,
                backlog=options.backlog,
                reuse_address=True,
            )
        except OSError as exc:
            raise TransportError(f"cannot listen on {addr}: {exc}") from exc
        listener = TcpListener(server, self._listeners.discard)
        self._listeners.add(listener)
        return listener

    async def close(self) -> None:
        """Close every listener still open (connections are left alone)."""
        for listener in list(self._listeners):
            await listener.close()
