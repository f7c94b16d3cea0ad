"""The QUIC transport: ``/ip4|ip6/<host>/udp/<port>/quic-v1``, listen and dial (and
dial ``/dns|dns4|dns6`` names).

A :class:`~p2pkit.network.MuxedTransport`: QUIC authenticates (the libp2p TLS
certificate, inside the QUIC handshake) and multiplexes by itself, so the swarm gets a
:class:`~p2pkit.network.MuxedTransportConnection` and runs no upgrade.  One UDP socket
(:class:`~p2pkit_quic.endpoint.Endpoint`) per listen address; dials reuse a listening
socket of the same family (and scope: loopback for loopback peers) when one exists.

aioquic (with pyOpenSSL and service_identity, which it imports: about 0.4 s) is loaded
by the first listen or dial, not when the transport is built, so a host that has QUIC
enabled but never uses it does not pay for it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable
from typing import TYPE_CHECKING

from multiaddr import Multiaddr

from p2pkit.addrs import resolve_name
from p2pkit.dialer import Dialer, DialerOptions
from p2pkit.errors import AddressError, DialError, HandshakeError, TransportError
from p2pkit.logs import get_logger
from p2pkit.network import (
    AdmissionTicket,
    InboundAdmission,
    Listener,
    MuxedConnectionHandler,
    MuxedTransport,
)
from p2pkit.network import MuxedTransportConnection as Native
from p2pkit.peer import PeerId
from p2pkit_quic._ids import MUXER_PROTOCOL, SECURITY_PROTOCOL
from p2pkit_quic.addresses import (
    QuicTarget,
    from_sockaddr,
    is_listenable,
    is_quic,
    local_addr_for,
    parse,
)
from p2pkit_quic.options import QuicOptions

NEXT_ADDRESS_DELAY = 0.25
"""Seconds a dial of one address of a ``/dns*`` name gets before the next one starts
too (RFC 8305's recommended Connection Attempt Delay)."""

MAX_NAME_ADDRESSES = 8
"""Addresses of one name a dial tries, in the resolver's order (a name may resolve to
many; each attempt holds a handshake's state)."""

CONNECTION_REFUSED = 0x2
"""RFC 9000 transport error: the server refused the connection (aioquic is imported
lazily, so its name for the code is not used here)."""

if TYPE_CHECKING:
    from p2pkit.crypto import PrivateKey
    from p2pkit.crypto.tls_certificate import HostCertificate
    from p2pkit_quic.endpoint import Endpoint
    from p2pkit_quic.session import QuicSession

log = get_logger("quic")


class QuicListener(Listener):
    """One listening UDP socket."""

    def __init__(self, transport: QuicTransport, endpoint: Endpoint) -> None:
        self._transport = transport
        self.endpoint = endpoint
        addr = from_sockaddr(endpoint.sockname)
        self._addrs = [addr] if addr is not None else []

    @property
    def addrs(self) -> list[Multiaddr]:
        return list(self._addrs)

    async def close(self) -> None:
        """Stop accepting; connections already accepted keep the socket until they end."""
        self._transport._stop_listening(self)


class QuicTransport(MuxedTransport):
    """Dials and listens on QUIC multiaddrs (see the module docstring and README)."""

    name = "quic"
    accepts_admission = True  # asked at the first Initial it keeps state for (endpoint.py)

    def __init__(self, private_key: PrivateKey, options: QuicOptions | None = None) -> None:
        self.private_key = private_key
        self.options = options or QuicOptions()
        self._certificate: HostCertificate | None = None
        self._listeners: list[QuicListener] = []
        self._endpoints: set[Endpoint] = set()
        # Without a listener, dials of one family share one socket (closed when its
        # last connection ends), as go-libp2p does, instead of one socket per dial.
        self._dial_endpoints: dict[socket.AddressFamily, Endpoint] = {}

    def certificate(self) -> HostCertificate:
        """Our libp2p certificate (made on first use: one per host, not per connection)."""
        if self._certificate is None:
            from p2pkit.crypto.tls_certificate import generate_certificate

            self._certificate = generate_certificate(self.private_key)
        return self._certificate

    def can_dial(self, addr: Multiaddr) -> bool:
        return is_quic(addr)

    def can_listen(self, addr: Multiaddr) -> bool:
        return is_listenable(addr)

    # -- listening -------------------------------------------------------------------------

    async def listen(
        self,
        addr: Multiaddr,
        handler: MuxedConnectionHandler,
        *,
        admit: InboundAdmission | None = None,
    ) -> Listener:
        target = parse(addr)
        try:
            endpoint = await self._open_endpoint(target.host, target.port, target.family)
        except OSError as exc:
            raise TransportError(f"cannot listen on {addr}: {exc}") from exc
        listener = QuicListener(self, endpoint)

        def on_inbound(session: QuicSession, ticket: AdmissionTicket | None) -> None:
            handler(_native(session, endpoint, ticket))

        endpoint.admit = admit
        endpoint.inbound = on_inbound
        self._listeners.append(listener)
        return listener

    def _stop_listening(self, listener: QuicListener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)
        endpoint = listener.endpoint
        endpoint.inbound = None
        endpoint.admit = None
        endpoint.abort_handshakes()
        if not endpoint.sessions:
            self._endpoint_idle(endpoint)

    async def _open_endpoint(self, host: str, port: int, family: socket.AddressFamily) -> Endpoint:
        from p2pkit_quic.endpoint import Endpoint  # deliberately lazy: see the docstring

        endpoint = await Endpoint.open(
            host, port, family, self.certificate, self.options, self._endpoint_idle
        )
        self._endpoints.add(endpoint)
        return endpoint

    def _endpoint_idle(self, endpoint: Endpoint) -> None:
        endpoint.close()
        self._endpoints.discard(endpoint)
        if self._dial_endpoints.get(endpoint.family) is endpoint:
            del self._dial_endpoints[endpoint.family]

    # -- dialing ---------------------------------------------------------------------------

    def _listening_endpoint_for(self, target: QuicTarget) -> Endpoint | None:
        for listener in self._listeners:
            endpoint = listener.endpoint
            if endpoint.closed or endpoint.family != target.family:
                continue
            bound = ipaddress.ip_address(str(endpoint.sockname[0]).split("%", 1)[0])
            if bound.is_unspecified or bound.is_loopback == target.is_loopback:
                return endpoint
        return None

    async def dial(self, addr: Multiaddr, *, timeout: float | None = None) -> Native:
        target = parse(addr)
        if target.port == 0 or target.is_unspecified:
            raise AddressError(f"cannot dial {addr}")
        limit = self.options.dial_timeout if timeout is None else timeout
        if not target.needs_resolution:
            return await self._dial_ip(addr, target, limit)
        loop = asyncio.get_running_loop()
        deadline = None if limit is None else loop.time() + limit
        try:
            async with asyncio.timeout_at(deadline):
                found = await resolve_name(
                    addr, target.host, target.port, target.family, socket.SOCK_DGRAM
                )
        except TimeoutError:
            raise DialError(f"dial {addr} timed out after {limit} s resolving it") from None
        targets = [target.resolved(family, ip) for family, ip in found[:MAX_NAME_ADDRESSES]]
        return await self._dial_any(addr, targets, deadline)

    async def _dial_any(
        self, addr: Multiaddr, targets: list[QuicTarget], deadline: float | None
    ) -> Native:
        """Dial the addresses a name resolved to, raced by the swarm's own dialer
        (:class:`p2pkit.dialer.Dialer`, RFC 8305): the next starts when the last has
        failed or :data:`NEXT_ADDRESS_DELAY` has passed without a completed handshake;
        the first handshake wins, the others are aborted.  Staggered rather than in
        turn because a dead address may only be known dead at its timeout (an ICMP error
        can be filtered)."""
        loop = asyncio.get_running_loop()
        by_addr = {from_sockaddr((t.host, t.port)): t for t in targets}

        def attempt(each: Multiaddr) -> Awaitable[Native]:
            left = None if deadline is None else max(deadline - loop.time(), 0.0)
            return self._dial_ip(addr, by_addr[each], left)

        # Each attempt ends at the deadline with its own error; the dialer's bound is
        # only a backstop behind them.
        overall = 1e9 if deadline is None else max(deadline - loop.time(), 0.0) + 1.0
        race = Dialer[Native](
            DialerOptions(stagger_delay=NEXT_ADDRESS_DELAY, overall_timeout=overall)
        )
        chosen = [a for a in by_addr if a is not None]
        native, _ = await race.dial(None, chosen, attempt, _abort, use_backoff=False)
        return native

    async def _dial_ip(self, addr: Multiaddr, target: QuicTarget, limit: float | None) -> Native:
        endpoint = self._listening_endpoint_for(target) or self._dial_endpoints.get(target.family)
        try:
            if endpoint is None or endpoint.closed:
                any_host = "0.0.0.0" if target.family == socket.AF_INET else "::"
                endpoint = await self._open_endpoint(any_host, 0, target.family)
                self._dial_endpoints[target.family] = endpoint
            # IPv6 socket addresses come back from recvfrom as 4-tuples: aioquic must
            # see the same tuple, or it takes the answers for another network path.
            remote = (
                (target.host, target.port)
                if target.family == socket.AF_INET
                else (target.host, target.port, 0, 0)
            )
            session = endpoint.connect(remote)
        except OSError as exc:
            if endpoint is not None and not endpoint.sessions and endpoint.inbound is None:
                self._endpoint_idle(endpoint)
            raise DialError(f"cannot dial {addr}", [(addr, exc)]) from exc
        try:
            async with asyncio.timeout(limit):
                await session.handshake
        except TimeoutError:
            session.abort(TimeoutError("dial timeout"))
            raise DialError(f"dial {addr} timed out after {limit} s (no QUIC answer)") from None
        except BaseException as exc:
            session.abort(exc)
            if isinstance(exc, asyncio.CancelledError | KeyboardInterrupt | SystemExit):
                raise
            if session.unreachable:  # ICMP port unreachable: what TCP reports as refused
                refused = ConnectionRefusedError("ICMP port unreachable")
                raise DialError(f"{addr} refused the connection", [(addr, refused)]) from None
            error = session.quic.certificate_error
            if error is not None:
                raise error from None
            close = session.quic._close_event
            if close is not None and close.error_code == CONNECTION_REFUSED:
                # The listener refused before any handshake (p2pkit_quic.refusal): what
                # a TCP dial reports for a reset, not a failed handshake.
                raise DialError(f"{addr} refused the connection: {exc}", [(addr, exc)]) from exc
            raise HandshakeError(f"QUIC handshake with {addr} failed: {exc}") from exc
        return _native(session, endpoint)

    async def close(self) -> None:
        for listener in list(self._listeners):
            await listener.close()
        # The host closed its connections first: what is left are dials and handshakes
        # nobody will take.
        for endpoint in list(self._endpoints):
            endpoint.abort_all()
            self._endpoint_idle(endpoint)


def _abort(conn: Native) -> None:
    """A handshake that completed after another address won."""
    conn.muxed.abort(ConnectionAbortedError("another address won"))


def _native(
    session: QuicSession, endpoint: Endpoint, ticket: AdmissionTicket | None = None
) -> Native:
    key = session.quic.remote_public_key
    assert key is not None  # the handshake completes only with a verified certificate
    return Native(
        muxed=session,
        remote_peer=PeerId.from_public_key(key),
        remote_public_key=key,
        local_addr=local_addr_for(endpoint.sockname, session.remote),
        remote_addr=from_sockaddr(session.remote),
        security_protocol=SECURITY_PROTOCOL,
        muxer_protocol=MUXER_PROTOCOL,
        use_memory=session.use_memory,
        admission=ticket,
    )
