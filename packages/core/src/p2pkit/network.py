"""The network-layer interfaces: transports, listeners, the connection manager, the gater.

Split from :mod:`p2pkit.abc` (which re-exports every name here) so that each module
stays short.  A transport hands the swarm either a :class:`~p2pkit.abc.RawConnection`
(which the swarm upgrades: security, then a muxer) or a
:class:`MuxedTransportConnection`: a connection the transport already authenticated and
multiplexed itself (QUIC, WebTransport, WebRTC).  Both meet the same limits, gater
checkpoints, events and connection manager.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, ClassVar, Protocol

if TYPE_CHECKING:
    from multiaddr import Multiaddr

    from p2pkit.abc import MemoryScope, MuxedConnection, MuxedStream, RawConnection
    from p2pkit.crypto import PublicKey
    from p2pkit.peer import PeerId


@dataclasses.dataclass(kw_only=True)
class MuxedTransportConnection:
    """A connection that is already authenticated and multiplexed.

    What a transport with built-in security and muxing (QUIC, WebTransport, WebRTC)
    returns from :meth:`Transport.dial` or hands to its listen handler; the swarm does
    not upgrade it.  The swarm's upgrader produces the same shape (a subclass) for raw
    connections, so everything after the upgrade treats both alike.
    """

    muxed: MuxedConnection
    remote_peer: PeerId
    remote_public_key: PublicKey
    local_addr: Multiaddr | None
    remote_addr: Multiaddr | None
    security_protocol: str
    muxer_protocol: str
    early_muxer: bool = False
    """True when the muxer was agreed inside the security handshake."""
    use_memory: Callable[[MemoryScope], None] | None = None
    """Set by a transport whose connection buffers what the peer sends (QUIC streams):
    the swarm calls it with the connection's :class:`~p2pkit.abc.MemoryScope` once the
    connection is admitted, as the upgrader passes it to a muxer
    (:attr:`~p2pkit.abc.StreamMuxer.accepts_memory_scope`)."""
    admission: AdmissionTicket | None = None
    """The ticket the transport's :data:`InboundAdmission` call returned for this
    inbound connection (see :attr:`MuxedTransport.accepts_admission`): the swarm uses it
    as the connection's scope instead of admitting the connection a second time.
    None: the swarm admits it on arrival (dials, transports that do not ask)."""


# -- transports --------------------------------------------------------------------


class AdmissionTicket(Protocol):
    """An inbound connection admitted before its handshake: it holds the connection's
    place in the limits (counted as a pending handshake, per IP and for the node).  The
    swarm's tickets are :class:`p2pkit.rcmgr.ConnectionScope` objects."""

    def close(self) -> None:
        """Give the place back (the handshake failed or timed out).  Idempotent."""


InboundAdmission = Callable[["Multiaddr | None", "Multiaddr | None"], AdmissionTicket]
"""``admit(local_addr, remote_addr) -> ticket``: asked by a :class:`MuxedTransport`
that accepts admission before it keeps any state for a new inbound handshake.  Runs the
checks the swarm runs for an accepted socket (host stopping, the gater's
``allow_accept``, the resource manager's connection and pending-handshake limits, node
and IP prefix); raises a :class:`~p2pkit.errors.P2PError` (typically
:class:`~p2pkit.limits.LimitExceeded`, counted and logged, rate-limited) to refuse.
The transport then drops what it received; otherwise it owns the ticket until it either
closes it (the handshake failed) or hands it over with the connection
(:attr:`MuxedTransportConnection.admission`)."""

ConnectionHandler = Callable[["RawConnection"], None]
"""Called synchronously with each connection a :class:`Transport` accepts."""
MuxedConnectionHandler = Callable[[MuxedTransportConnection], None]
"""Called synchronously with each connection a :class:`MuxedTransport` accepts."""


class Listener(abc.ABC):
    """A listening socket (or several) created by a transport's ``listen``."""

    @property
    @abc.abstractmethod
    def addrs(self) -> list[Multiaddr]:
        """The addresses really bound (port 0 resolved)."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Stop accepting.  Connections already accepted are not closed."""


class BaseTransport(abc.ABC):
    """What every transport kind shares: a name and the addresses it handles.

    Subclass :class:`Transport` (raw connections, upgraded by the swarm) or
    :class:`MuxedTransport` (security and muxing built in); the ``transport`` plugin
    kind accepts both.
    """

    name: str

    @abc.abstractmethod
    def can_dial(self, addr: Multiaddr) -> bool: ...

    @abc.abstractmethod
    def can_listen(self, addr: Multiaddr) -> bool: ...

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release transport-wide resources."""


class Transport(BaseTransport):
    """Dials and listens for raw connections on some multiaddrs."""

    accepts_admission: ClassVar[bool] = False
    """True if ``listen`` takes ``admit=`` (an :data:`InboundAdmission`): for a transport
    that runs a handshake of its own before it calls ``handler`` (WebSocket's HTTP
    upgrade), so a connection counts against the pending limits, and meets the gater,
    from its first byte.  It hands the ticket over as the connection's ``admission``
    attribute.  Without it the swarm admits a connection when the handler is called."""

    @abc.abstractmethod
    async def dial(self, addr: Multiaddr, *, timeout: float | None = None) -> RawConnection:
        """Open a raw connection; ``/p2p/...`` suffixes are ignored here.

        Raises DialError (refused, unreachable, timeout) or AddressError.
        """

    @abc.abstractmethod
    async def listen(self, addr: Multiaddr, handler: ConnectionHandler) -> Listener:
        """Listen; ``handler`` is called synchronously with each new connection."""


class MuxedTransport(BaseTransport):
    """A transport with built-in security and muxing (QUIC, WebTransport, WebRTC).

    Its connections skip the swarm's upgrader.  ``dial`` need not check the expected
    peer id (it is not given): the swarm compares it with ``remote_peer`` and raises
    PeerIdMismatch.
    """

    accepts_admission: ClassVar[bool] = False
    """True if ``listen`` takes ``admit=``: the swarm passes its
    :data:`InboundAdmission` only then, so transports written without it keep working
    (the swarm admits their connections when they arrive, after the handshake)."""

    @abc.abstractmethod
    async def dial(
        self, addr: Multiaddr, *, timeout: float | None = None
    ) -> MuxedTransportConnection:
        """Open an authenticated, multiplexed connection; ``/p2p/...`` suffixes ignored.

        Raises DialError (refused, unreachable, timeout), AddressError or a
        HandshakeError.
        """

    @abc.abstractmethod
    async def listen(
        self,
        addr: Multiaddr,
        handler: MuxedConnectionHandler,
        *,
        admit: InboundAdmission | None = None,
    ) -> Listener:
        """Listen; ``handler`` is called synchronously with each new connection.

        ``admit`` (only if :attr:`accepts_admission`): ask it before keeping state for
        a new inbound handshake (see :data:`InboundAdmission`), so handshakes in
        progress count against the pending-connection limits.
        """


# -- connection management -----------------------------------------------------------


class ConnectionManager(abc.ABC):
    """Keeps the number of connections between watermarks (libp2p connections spec,
    "state management").  The host reports every connection it adds and removes; the
    manager decides which to close.  Replaceable through the ``connection_manager``
    plugin kind.
    """

    @abc.abstractmethod
    def connected(self, conn: HostConnection) -> None:
        """A connection was added (after the Connected event)."""

    @abc.abstractmethod
    def disconnected(self, conn: HostConnection) -> None:
        """A connection was removed (after the Disconnected event)."""

    @abc.abstractmethod
    def protect(self, peer: PeerId, tag: str) -> None:
        """Never trim ``peer`` while at least one protection tag remains."""

    @abc.abstractmethod
    def unprotect(self, peer: PeerId, tag: str) -> bool:
        """Remove one protection tag; True if the peer is still protected by another."""

    @abc.abstractmethod
    def is_protected(self, peer: PeerId, tag: str | None = None) -> bool: ...

    @abc.abstractmethod
    def tag_peer(self, peer: PeerId, tag: str, weight: int) -> None:
        """Set the weight of one tag; the peer's score is the sum of its tag weights."""

    @abc.abstractmethod
    def untag_peer(self, peer: PeerId, tag: str) -> None: ...

    @abc.abstractmethod
    async def trim(self) -> int:
        """Trim down to the low watermark now; returns the number of connections closed."""

    async def start(self) -> None:  # noqa: B027 - optional hook
        """Called when the host starts (start background work here)."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Called when the host stops."""


class HostConnection(Protocol):
    """What the connection manager and the gater may see of a host connection."""

    tags: dict[str, int]

    @property
    def peer(self) -> PeerId: ...

    @property
    def direction(self) -> str:
        """``"inbound"`` or ``"outbound"``."""

    @property
    def remote_addr(self) -> Multiaddr | None: ...

    @property
    def opened_at(self) -> float: ...

    @property
    def streams(self) -> Sequence[MuxedStream]: ...

    @property
    def is_closed(self) -> bool: ...

    async def close(self) -> None: ...


class ConnectionGater(abc.ABC):
    """go-libp2p's five checkpoints; return False to refuse.  The default allows all.

    Checkpoints, in connection order: ``allow_dial_peer`` (before dialing a peer id),
    ``allow_dial_addr`` (before dialing each address), ``allow_accept`` (inbound socket,
    before any handshake), ``allow_secured`` (after the security handshake, peer id
    known, both directions), ``allow_upgraded`` (after the muxer, before the host uses it).
    """

    def allow_dial_peer(self, peer: PeerId) -> bool:
        return True

    def allow_dial_addr(self, peer: PeerId | None, addr: Multiaddr) -> bool:
        return True

    def allow_accept(self, local_addr: Multiaddr | None, remote_addr: Multiaddr | None) -> bool:
        return True

    def allow_secured(self, direction: str, peer: PeerId, remote_addr: Multiaddr | None) -> bool:
        return True

    def allow_upgraded(self, conn: HostConnection) -> bool:
        return True
