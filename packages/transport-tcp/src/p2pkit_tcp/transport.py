"""The TCP transport: dialing and listening on TCP multiaddrs."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable

from multiaddr import Multiaddr

from p2pkit.abc import ConnectionHandler, Listener, RawConnection, Transport
from p2pkit.errors import AddressError, DialError, TransportError
from p2pkit.logs import get_logger
from p2pkit.stream_socket import ServerListener, dial_stream, listen_stream
from p2pkit.tcp_addrs import resolve
from p2pkit_tcp.addresses import from_sockaddr, is_tcp, parse
from p2pkit_tcp.connection import TcpConnection
from p2pkit_tcp.options import TcpOptions

log = get_logger("tcp")  # p2pkit.tcp (p2pkit.logs)


class TcpListener(ServerListener):
    """One ``asyncio.Server`` (one socket, or one per resolved address for ``/dns*``)."""

    def __init__(self, server: asyncio.Server, on_close: Callable[[ServerListener], None]) -> None:
        addrs = (from_sockaddr(s.getsockname()) for s in server.sockets)
        super().__init__(server, [a for a in addrs if a is not None], on_close)


class TcpTransport(Transport):
    """Dials and listens on ``/ip4|ip6|dns|dns4|dns6/.../tcp/<port>`` (see the README)."""

    name = "tcp"

    def __init__(self, options: TcpOptions | None = None) -> None:
        self.options = options or TcpOptions()
        self._listeners: set[ServerListener] = set()

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
        deadline = None if limit is None else asyncio.get_running_loop().time() + limit
        try:
            async with asyncio.timeout_at(deadline):
                hosts = await resolve(addr, target)
        except TimeoutError:
            raise DialError(f"dial {addr} timed out after {limit} s resolving it") from None
        endpoints = [(family, host, target.port) for family, host in hosts]
        return await self.connect_any(addr, endpoints, deadline)

    async def connect_any(
        self,
        addr: Multiaddr,
        endpoints: list[tuple[socket.AddressFamily, str, int]],
        deadline: float | None,
    ) -> TcpConnection:
        """Connect to the first endpoint that answers, trying them in order, by ``deadline``
        (None: no deadline of ours, the kernel's connect timeout applies).

        Every endpoint gets an equal share of the time left (the last one all of it), so
        one black-holed address of a name (say a dead IPv6 address before a live IPv4
        one) cannot use up the whole dial timeout.  Raises DialError listing each failure
        ("timed out" in the message when the deadline passed).
        """
        loop = asyncio.get_running_loop()
        errors: list[tuple[object, BaseException]] = []
        start = loop.time()
        for i, (family, host, port) in enumerate(endpoints):
            where: object = f"{host}:{port}" if len(endpoints) > 1 else addr
            conn = TcpConnection(self.options, is_initiator=True)
            share = None if deadline is None else (deadline - loop.time()) / (len(endpoints) - i)
            try:
                async with asyncio.timeout(None if share is None else max(share, 0.0)):
                    await dial_stream(conn, loop.create_connection, host, port, family=family)
            except TimeoutError:  # ours, or the kernel's ETIMEDOUT
                waited = "" if share is None else f" within {max(share, 0):.2f} s"
                errors.append((where, TimeoutError(f"no answer{waited}")))
            except OSError as exc:
                errors.append((where, exc))
            else:
                return conn
        if errors and isinstance(errors[-1][1], TimeoutError):
            took = loop.time() - start
            raise DialError(f"dial {addr} timed out after {took:.2f} s", errors)
        raise DialError(f"cannot dial {addr}", errors)

    # -- listening ---------------------------------------------------------------------

    async def listen(self, addr: Multiaddr, handler: ConnectionHandler) -> Listener:
        target = parse(addr)
        loop = asyncio.get_running_loop()
        options = self.options
        try:
            server = await listen_stream(
                lambda: TcpConnection(options, is_initiator=False),
                handler,
                loop.create_server,
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
