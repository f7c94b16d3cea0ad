"""One UDP socket and the QUIC connections that use it (demultiplexed by connection id).

A listening endpoint accepts new connections (a long-header Initial of at least 1200
bytes for an unknown connection id); dials leave from it too, so peers see our stable
listening port (as go-libp2p reuses its port).  Dials with no suitable listener share
one endpoint per address family, closed with its last connection.  The socket itself
is :class:`~p2pkit_quic.udp.UdpSocket` (batched reads).

What an Initial from a stranger may cost is bounded: at most ``max_handshakes``
inbound handshakes in progress per socket (more Initials are dropped), each bounded in
time (``handshake_timeout``) and, until the peer's address is validated, in bytes
(aioquic sends at most three times what it received: RFC 9000 anti-amplification).
Above ``retry_above`` handshakes in progress (or always, with ``retry``), a stateless
Retry validates a new peer's address before any state is kept for it.  Past these
checks (and past the Retry round trip, when one is sent), the host's admission
(:data:`p2pkit.network.InboundAdmission`, given to ``listen``) is asked before the
connection's state is created: its pending-handshake and connection limits, per node
and per IP prefix, count QUIC handshakes in progress as they count TCP sockets being
upgraded.  A refused Initial keeps no state: dropped when the refusal passes (the
pending limits; the client's retransmission asks again), answered with a stateless
CONNECTION_REFUSED otherwise (:mod:`p2pkit_quic.refusal`, rate-limited); the
ticket is given back when the handshake fails or times out, and handed to the host
with the connection otherwise.
Anything that does not parse as a QUIC packet for a known connection is dropped after
reading its header, and a new connection whose first Initial did not decrypt is
forgotten at once; a packet of another QUIC version gets a Version Negotiation reply
(only to a full-size datagram, so it cannot amplify).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aioquic._buffer import Buffer, BufferReadError  # (aioquic.buffer re-exports them)
from aioquic.quic.packet import (
    QuicHeader,
    QuicPacketType,
    QuicProtocolVersion,
    encode_quic_retry,
    encode_quic_version_negotiation,
    pull_quic_header,
)
from aioquic.quic.retry import QuicRetryTokenHandler
from aioquic.tls import Epoch

from p2pkit.errors import P2PError
from p2pkit.limits import LimitExceeded
from p2pkit.logs import RepeatLimiter, get_logger
from p2pkit_quic.addresses import from_sockaddr
from p2pkit_quic.machine import Libp2pQuicConnection, make_configuration
from p2pkit_quic.refusal import RefusalBudget, connection_refused
from p2pkit_quic.session import QuicSession
from p2pkit_quic.udp import UdpSocket

if TYPE_CHECKING:
    from aioquic.quic.configuration import QuicConfiguration
    from multiaddr import Multiaddr

    from p2pkit.crypto.tls_certificate import HostCertificate
    from p2pkit.network import AdmissionTicket, InboundAdmission
    from p2pkit_quic.options import QuicOptions

log = get_logger("quic")

CID_LENGTH = 8
MIN_INITIAL_SIZE = 1200
VERSIONS = [QuicProtocolVersion.VERSION_1]
PENDING_LIMITS = frozenset({"max_pending_inbound", "max_pending_per_ip"})
"""Refusals that pass as handshakes end: the Initial is dropped, not answered."""

InboundHandler = Callable[[QuicSession, "AdmissionTicket | None"], None]
"""Called with each inbound connection whose handshake completed, and its ticket."""


# -- what a datagram for no known connection costs: pure functions (fuzz/quic.py) ------------


def other_version(data: bytes) -> bool:
    """A long-header packet of a version we do not speak.  Only the version-independent
    header is defined for it (RFC 8999; aioquic's parser would read it as a v1
    Initial).  Version 0, Version Negotiation, goes on to the connection it is for."""
    if data and data[0] & 0x80 and len(data) >= 7:
        version = int.from_bytes(data[1:5], "big")
        return bool(version) and version not in VERSIONS
    return False


def version_negotiation(data: bytes) -> bytes | None:
    """The Version Negotiation reply to ``data`` (a packet of :func:`other_version`)
    listing the versions we speak; None for a datagram under 1200 bytes (RFC 9000, 6.1:
    no amplification) or a header too short to hold its connection ids."""
    if len(data) < MIN_INITIAL_SIZE:
        return None
    dcid_len = data[5]
    scid_at = 6 + dcid_len
    if scid_at >= len(data):
        return None
    scid_len = data[scid_at]
    if scid_at + 1 + scid_len > len(data):
        return None
    dcid = data[6:scid_at]
    scid = data[scid_at + 1 : scid_at + 1 + scid_len]
    return encode_quic_version_negotiation(
        source_cid=dcid, destination_cid=scid, supported_versions=list(VERSIONS)
    )


def read_header(data: bytes) -> QuicHeader | None:
    """The QUIC header of a datagram of our version, or None if it does not parse."""
    try:
        return pull_quic_header(Buffer(data=data), host_cid_length=CID_LENGTH)
    except (ValueError, BufferReadError):
        return None


def opens_connection(header: QuicHeader, size: int) -> bool:
    """May a datagram for no known connection start one (a full-size Initial)?"""
    return header.packet_type == QuicPacketType.INITIAL and size >= MIN_INITIAL_SIZE


class Endpoint:
    """See the module docstring."""

    def __init__(
        self,
        certificate: Callable[[], HostCertificate],
        options: QuicOptions,
        on_idle: Callable[[Endpoint], None],
    ) -> None:
        self._certificate = certificate
        self.options = options
        self._on_idle = on_idle
        self._socket: UdpSocket | None = None
        self._sessions: dict[bytes, QuicSession] = {}
        self._live: set[QuicSession] = set()
        self._dialing: dict[Any, QuicSession] = {}
        """Our dials still in their handshake, by the address they go to."""
        self.inbound: InboundHandler | None = None
        """Set while listening: called with each connection whose handshake completed."""
        self.admit: InboundAdmission | None = None
        """Set while listening for a host: asked before state is kept for a handshake."""
        self._tickets: dict[QuicSession, AdmissionTicket] = {}
        """What ``admit`` returned for each inbound handshake in progress."""
        self._refusals = RefusalBudget()
        self._repeats = RepeatLimiter()
        self.handshakes = 0
        self._retry = QuicRetryTokenHandler()
        self._configurations: dict[bool, tuple[HostCertificate, QuicConfiguration]] = {}
        self.sockname: Any = None
        self.local_addr: Multiaddr | None = None
        self.family = socket.AF_INET
        self.closed = False

    # -- socket -------------------------------------------------------------------------------

    @classmethod
    async def open(
        cls,
        host: str,
        port: int,
        family: socket.AddressFamily,
        certificate: Callable[[], HostCertificate],
        options: QuicOptions,
        on_idle: Callable[[Endpoint], None],
    ) -> Endpoint:
        endpoint = cls(certificate, options, on_idle)
        endpoint.family = family
        endpoint._socket = UdpSocket.bind(
            host, port, family, endpoint.datagram_received, endpoint.unreachable
        )
        endpoint.sockname = endpoint._socket.sockname
        endpoint.local_addr = from_sockaddr(endpoint.sockname)
        return endpoint

    def send_many(self, datagrams: list[tuple[bytes, Any]]) -> None:
        if self._socket is not None:
            self._socket.send_many(datagrams)

    def close(self) -> None:
        self.closed = True
        if self._socket is not None:
            self._socket.close()

    # -- bookkeeping --------------------------------------------------------------------------

    def register(self, cid: bytes, session: QuicSession) -> None:
        self._sessions[cid] = session

    def unregister(self, cid: bytes, session: QuicSession) -> None:
        if self._sessions.get(cid) is session:
            del self._sessions[cid]

    def session_ended(self, session: QuicSession, cids: set[bytes]) -> None:
        for cid in cids:
            self.unregister(cid, session)
        self._live.discard(session)
        if not self._live and self.inbound is None:
            self._on_idle(self)

    @property
    def sessions(self) -> int:
        return len(self._live)

    def abort_handshakes(self) -> None:
        """Abort inbound handshakes in progress (nobody will take their connections)."""
        for session in list(self._live):
            if not session.is_initiator and not session.handshake.done():
                session.abort(ConnectionRefusedError("not listening any more"))

    def abort_all(self) -> None:
        for session in list(self._live):
            session.abort(ConnectionAbortedError("transport closed"))

    def configuration(self, *, is_client: bool) -> QuicConfiguration:
        """The configuration of our connections in one role: one object shared by all of
        them (aioquic only reads it), made again if the host certificate changes."""
        certificate = self._certificate()
        made = self._configurations.get(is_client)
        if made is None or made[0] is not certificate:
            config = make_configuration(certificate, self.options, is_client=is_client)
            made = self._configurations[is_client] = (certificate, config)
        return made[1]

    # -- dialing -------------------------------------------------------------------------------

    def connect(self, addr: Any) -> QuicSession:
        """Start a client handshake to ``addr`` from this socket."""
        config = self.configuration(is_client=True)
        quic = Libp2pQuicConnection(configuration=config, options=self.options)
        session = QuicSession(self, quic, addr, self.options, is_initiator=True)
        self._live.add(session)
        self._dialing[addr] = session
        session.handshake.add_done_callback(lambda _: self._dial_settled(addr, session))
        session.add_cid(quic.host_cid)
        quic.connect(addr, asyncio.get_running_loop().time())
        session.schedule_transmit()
        return session

    def _dial_settled(self, addr: Any, session: QuicSession) -> None:
        if self._dialing.get(addr) is session:
            del self._dialing[addr]

    def unreachable(self, addr: Any) -> None:
        """ICMP "port unreachable" for a datagram we sent to ``addr`` (udp.py): a dial
        there still in its handshake is refused now, as a TCP dial is on a reset."""
        session = self._dialing.get(addr)
        if session is not None and not session.handshake.done():
            session.unreachable = True
            session.abort(ConnectionRefusedError(f"{addr[0]} port {addr[1]} unreachable"))

    # -- receiving ------------------------------------------------------------------------------

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if other_version(data):
            if self.inbound is not None and (reply := version_negotiation(data)) is not None:
                self.send_many([(reply, addr)])
            return
        header = read_header(data)
        if header is None:
            return  # not QUIC, or truncated: costs one header parse
        session = self._sessions.get(header.destination_cid)
        if session is not None:
            try:
                session.datagram_received(data, addr)
            except Exception as exc:  # aioquic must not fail on input, but if it does
                log.warning("QUIC connection from %s failed on input: %r", addr, exc)
                session.abort(exc)
            return
        if self.inbound is None:
            return
        if not opens_connection(header, len(data)):
            return
        if self.handshakes >= self.options.max_handshakes:
            log.debug("QUIC Initial from %s dropped: %d handshakes", addr, self.handshakes)
            return
        self._accept(data, addr, header)

    def _accept(self, data: bytes, addr: Any, header: Any) -> None:
        loop = asyncio.get_running_loop()
        original_cid: bytes = header.destination_cid
        retry_cid: bytes | None = None
        validated = False
        if header.token:
            # A client that got a Retry from us comes back with its token (even if the
            # load that made us send it is gone).  A token we cannot validate (forged,
            # expired, or another server's NEW_TOKEN) counts as none (RFC 9000, 8.1.3).
            try:
                original_cid = self._retry.validate_token(
                    address=addr,
                    destination_cid=header.destination_cid,
                    token=header.token,
                    now=loop.time(),
                )
            except ValueError:
                original_cid = header.destination_cid
            else:
                retry_cid = header.destination_cid
                validated = True
        if not validated and (
            self.options.retry or 0 < self.options.retry_above <= self.handshakes
        ):
            source_cid = os.urandom(CID_LENGTH)
            token = self._retry.create_token(
                address=addr,
                original_destination_connection_id=header.destination_cid,
                retry_source_connection_id=source_cid,
                now=loop.time(),
            )
            retry = encode_quic_retry(
                version=header.version,
                source_cid=source_cid,
                destination_cid=header.source_cid,
                original_destination_cid=header.destination_cid,
                retry_token=token,
            )
            self.send_many([(retry, addr)])
            return
        ticket: AdmissionTicket | None = None
        if self.admit is not None:
            ticket = self._admit(self.admit, addr, header)
            if ticket is None:
                return  # refused: no state (p2pkit_quic.refusal)
        config = self.configuration(is_client=False)
        quic = Libp2pQuicConnection(
            configuration=config,
            original_destination_connection_id=original_cid,
            retry_source_connection_id=retry_cid,
            options=self.options,
        )
        session = QuicSession(self, quic, addr, self.options, is_initiator=False)
        if ticket is not None:
            self._tickets[session] = ticket
        self._live.add(session)
        session.add_cid(header.destination_cid)
        session.add_cid(quic.host_cid)
        self.handshakes += 1
        timer = loop.call_later(
            self.options.handshake_timeout, session.abort, TimeoutError("QUIC handshake timeout")
        )
        session.handshake.add_done_callback(lambda fut: self._handshake_done(session, timer))
        session.datagram_received(data, addr)
        if quic._spaces[Epoch.INITIAL].largest_received_packet < 0:
            # Nothing in it decrypted (garbage with an Initial's header, or bits
            # flipped): it would hold a handshake slot, and the host's admission, until
            # the handshake timeout.  Keep no state for it.
            session.abort(ConnectionRefusedError("QUIC Initial did not decrypt"))

    def _admit(
        self, admit: InboundAdmission, addr: Any, header: QuicHeader
    ) -> AdmissionTicket | None:
        """Ask the host's admission about a new handshake from ``addr``: its ticket,
        or None when refused.  A refusal for good is answered with a stateless
        CONNECTION_CLOSE (rate-limited); a full table of pending handshakes only drops
        the Initial, whose retransmission asks again (:mod:`p2pkit_quic.refusal`)."""
        try:
            return admit(self.local_addr, from_sockaddr(addr))
        except P2PError as exc:  # counted and logged (rate-limited) by the host
            self._repeats.log(log, logging.DEBUG, "refused", "QUIC Initial from %s refused: %s",
                              addr, exc)  # fmt: skip
            passing = isinstance(exc, LimitExceeded) and exc.limit in PENDING_LIMITS
            if not passing and self._refusals.take(asyncio.get_running_loop().time()):
                self.send_many([(connection_refused(header), addr)])
        except Exception as exc:  # a bug in the admission must not stop the socket
            self._repeats.log(log, logging.WARNING, "admit", "QUIC admission failed: %r", exc)
        return None

    def _handshake_done(self, session: QuicSession, timer: asyncio.TimerHandle) -> None:
        self.handshakes -= 1
        timer.cancel()
        ticket = self._tickets.pop(session, None)
        if session.handshake.cancelled() or session.handshake.exception() is not None:
            if ticket is not None:
                ticket.close()  # failed or timed out: its place is free again
            return
        if self.inbound is None:
            session.abort(ConnectionRefusedError("not listening any more"))
            if ticket is not None:
                ticket.close()
            return
        try:
            self.inbound(session, ticket)  # the ticket goes with the connection
        except Exception as exc:  # a handler bug costs that connection, not the listener
            log.warning("QUIC connection handler failed: %r", exc, exc_info=True)
            session.abort(exc)
            if ticket is not None:
                ticket.close()
