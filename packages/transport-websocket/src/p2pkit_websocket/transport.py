"""The WebSocket transport: dialing and listening on ``/ws`` and ``/tls/ws`` multiaddrs.

A default host builds every enabled transport, so this module stays light: the
connection module (and ``websockets``, about 10 ms of imports) is loaded by the first
listen or dial, never by a host that does not use WebSocket addresses.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import TYPE_CHECKING

from multiaddr import Multiaddr

from p2pkit.abc import ConnectionHandler, Listener, RawConnection, Transport
from p2pkit.errors import AddressError, DialError, P2PError, TransportError
from p2pkit.logs import get_logger
from p2pkit.stream_socket import ListenerSet
from p2pkit.tcp_addrs import resolve
from p2pkit_websocket.addresses import WsTarget, from_sockaddr, is_ws, normalise, parse
from p2pkit_websocket.options import WsOptions

if TYPE_CHECKING:
    from p2pkit.network import InboundAdmission
    from p2pkit_websocket.connection import WsConnection

log = get_logger("websocket")


class WsTransport(Transport):
    """Dials and listens on ``<tcp multiaddr>/ws`` and ``/tls/ws`` (see the README)."""

    name = "websocket"
    accepts_admission = True  # asked when a socket is accepted, before its upgrade

    def __init__(self, options: WsOptions | None = None) -> None:
        self.options = options or WsOptions()
        self._listeners = ListenerSet()
        self._client_ctx: ssl.SSLContext | None = None
        self._server_ctx: ssl.SSLContext | None = None

    def can_dial(self, addr: Multiaddr) -> bool:
        return is_ws(addr)

    def can_listen(self, addr: Multiaddr) -> bool:
        return is_ws(addr)

    # -- TLS -------------------------------------------------------------------------------

    def client_context(self) -> ssl.SSLContext:
        """Verifies servers against ``ca_file`` or the system's CAs (built once)."""
        if self._client_ctx is None:
            self._client_ctx = ssl.create_default_context(cafile=self.options.ca_file)
        return self._client_ctx

    def server_context(self) -> ssl.SSLContext:
        if self._server_ctx is None:
            cert, key = self.options.cert_file, self.options.key_file
            if cert is None or key is None:
                raise TransportError(
                    "listening on /tls/ws needs cert_file and key_file "
                    "([p2pkit.plugins.websocket] or HostBuilder.transport('websocket', ...))"
                )
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            try:
                ctx.load_cert_chain(cert, key)
            except (OSError, ssl.SSLError) as exc:
                raise TransportError(f"cannot load the /tls/ws certificate: {exc}") from exc
            self._server_ctx = ctx
        return self._server_ctx

    # -- dialing -----------------------------------------------------------------------------

    async def dial(self, addr: Multiaddr, *, timeout: float | None = None) -> RawConnection:
        target = parse(addr)
        if target.tcp.port == 0:
            raise AddressError(f"cannot dial port 0: {addr}")
        limit = self.options.dial_timeout if timeout is None else timeout
        loop = asyncio.get_running_loop()
        deadline = None if limit is None else loop.time() + limit
        try:
            async with asyncio.timeout_at(deadline):
                return await self._dial(addr, target)
        except TimeoutError:
            raise DialError(f"dial {addr} timed out after {limit} s") from None

    async def _dial(self, addr: Multiaddr, target: WsTarget) -> WsConnection:
        from p2pkit_websocket.connection import WsConnection, WsProtocol  # lazy: see above

        hosts = await resolve(addr, target.tcp)
        ctx = self.client_context() if target.tls else None
        server_hostname = (target.sni or target.tcp.host) if ctx is not None else None
        errors: list[tuple[object, BaseException]] = []
        loop = asyncio.get_running_loop()
        for family, host in hosts:
            conn = WsConnection(
                self.options, is_initiator=True, tls=target.tls, host_header=target.host_header
            )
            try:
                await loop.create_connection(
                    lambda c=conn: WsProtocol(c),
                    host,
                    target.tcp.port,
                    family=family,
                    ssl=ctx,
                    server_hostname=server_hostname,
                )
                # Bounded on its own: without a dial timeout a server that never
                # answers the upgrade would hold the dial forever.
                async with asyncio.timeout(self.options.handshake_timeout):
                    await conn.ready
            except TimeoutError:
                conn.reset()
                silent = TimeoutError(
                    f"no WebSocket upgrade within {self.options.handshake_timeout} s"
                )
                errors.append((f"{host}:{target.tcp.port}", silent))
            except (OSError, ssl.SSLError, P2PError) as exc:
                conn.reset()
                errors.append((f"{host}:{target.tcp.port}", exc))
            except BaseException:
                conn.reset()
                raise
            else:
                return conn
        raise DialError(f"cannot dial {addr}", errors)

    # -- listening ---------------------------------------------------------------------------

    async def listen(
        self, addr: Multiaddr, handler: ConnectionHandler, *, admit: InboundAdmission | None = None
    ) -> Listener:
        """Listen; ``admit`` (given by the swarm) is asked as each socket is accepted,
        so upgrades in progress count against the host's pending-connection limits and
        meet its gater (for ``/tls/ws``: once TLS is done, which ``handshake_timeout``
        bounds)."""
        from p2pkit_websocket.connection import WsConnection, WsProtocol  # lazy: see above

        target = parse(addr)
        ctx = self.server_context() if target.tls else None
        options = self.options
        tls = target.tls

        def on_ready(conn: WsConnection) -> None:
            try:
                handler(conn)
            except Exception:
                log.exception("connection handler failed for %r; resetting it", conn)
                conn.reset()

        def make() -> WsProtocol:
            return WsProtocol(
                WsConnection(options, is_initiator=False, tls=tls, on_ready=on_ready, admit=admit)
            )

        loop = asyncio.get_running_loop()
        try:
            server = await loop.create_server(
                make,
                target.tcp.host,
                target.tcp.port,
                family=target.tcp.family,
                backlog=options.backlog,
                reuse_address=True,
                ssl=ctx,
                ssl_handshake_timeout=options.handshake_timeout if ctx is not None else None,
            )
        except OSError as exc:
            raise TransportError(f"cannot listen on {normalise(addr)}: {exc}") from exc
        addrs = (from_sockaddr(s.getsockname(), tls=tls) for s in server.sockets)
        return self._listeners.track(server, [a for a in addrs if a is not None])

    async def close(self) -> None:
        """Close every listener still open (connections are left alone)."""
        await self._listeners.close()
