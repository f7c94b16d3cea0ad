"""The interfaces every implementation (ours and third parties') speaks.

Every :class:`ByteStream`: ``close_write()`` half-closes (a later write raises
:class:`~p2pkit.errors.StreamClosed`); ``close()`` is graceful and idempotent;
``reset()`` aborts now and never raises.  After a reset, reads and writes on both ends
raise :class:`~p2pkit.errors.StreamReset` on a muxed stream and
:class:`~p2pkit.errors.ConnectionClosed` on a :class:`Channel` (as the compliance suites
check).  Reads return ``b""`` at EOF, after all buffered data.

A :class:`Channel` is in pull mode (``read``: handshakes, negotiation) until a muxer
calls ``start_push``; then bytes go to a :class:`Receiver` in the call chain that
received them.  :class:`p2pkit.channel.ChannelBase` implements that state machine once.
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, ClassVar, Protocol

if TYPE_CHECKING:
    from multiaddr import Multiaddr

    from p2pkit.crypto import PublicKey
    from p2pkit.peer import PeerId

Buffer = bytes | bytearray | memoryview


class ByteStream(abc.ABC):
    """An ordered, reliable, bidirectional byte stream with half-close and reset."""

    @abc.abstractmethod
    async def read(self, max_bytes: int = -1) -> bytes:
        """Up to ``max_bytes`` (any amount if -1); waits while nothing is buffered."""

    @abc.abstractmethod
    async def write(self, data: Buffer) -> None:
        """Send all of ``data``, waiting under backpressure; ``data`` may then be reused."""

    @abc.abstractmethod
    async def close_write(self) -> None: ...
    @abc.abstractmethod
    async def close(self) -> None: ...
    @abc.abstractmethod
    def reset(self) -> None: ...
    @abc.abstractmethod
    def unread(self, data: bytes) -> None:
        """Put ``data`` back in front of the read buffer (negotiation read too far)."""

    async def readexactly(self, n: int) -> bytes:
        """Read exactly ``n`` bytes; raises :class:`asyncio.IncompleteReadError` at EOF."""
        parts: list[bytes] = []
        got = 0
        while got < n:
            chunk = await self.read(n - got)
            if not chunk:
                raise asyncio.IncompleteReadError(b"".join(parts), n)
            parts.append(chunk)
            got += len(chunk)
        return b"".join(parts)


class Receiver(Protocol):
    """Consumer of a channel in push mode; ``data`` is valid only during the call."""

    def data_received(self, data: memoryview) -> None: ...
    def eof_received(self) -> None: ...
    def connection_lost(self, exc: BaseException | None) -> None: ...


class Channel(ByteStream):
    """A connection-level byte pipe (raw or secured).  ``start_push``: from then on
    bytes, EOF and loss (also those already there) go to the receiver.  ``write_nowait``
    data must not be mutated afterwards; ``write_many`` takes one muxer frame's parts.
    ``drain`` waits while ``write_paused``.  Both raise ConnectionClosed once closed."""

    is_initiator: bool

    @property
    @abc.abstractmethod
    def local_addr(self) -> Multiaddr | None: ...
    @property
    @abc.abstractmethod
    def remote_addr(self) -> Multiaddr | None: ...
    @property
    @abc.abstractmethod
    def closed(self) -> bool: ...
    @property
    @abc.abstractmethod
    def write_paused(self) -> bool: ...
    @abc.abstractmethod
    def start_push(self, receiver: Receiver) -> None: ...
    @abc.abstractmethod
    def write_nowait(self, data: Buffer) -> None: ...
    @abc.abstractmethod
    def write_many(self, parts: Sequence[Buffer]) -> None: ...
    @abc.abstractmethod
    async def drain(self) -> None: ...
    @abc.abstractmethod
    def pause_reading(self) -> None: ...
    @abc.abstractmethod
    def resume_reading(self) -> None: ...


class RawConnection(Channel):
    """A transport connection before security."""

    transport_name: str


class SecureConnection(Channel):
    """A channel whose remote identity has been authenticated."""

    local_peer: PeerId
    remote_peer: PeerId
    remote_public_key: PublicKey
    security_protocol: str
    early_muxer: str | None  # agreed during the handshake (early negotiation), or None


# -- security ----------------------------------------------------------------------


class SecurityProtocol(abc.ABC):
    """Turns a RawConnection into an authenticated, usually encrypted, channel."""

    protocol_id: str

    @abc.abstractmethod
    async def secure_outbound(
        self, conn: RawConnection, remote_peer: PeerId | None, muxers: Sequence[str] = ()
    ) -> SecureConnection:
        """Run the handshake as initiator.

        ``remote_peer``: when given, a different authenticated identity raises
        PeerIdMismatch.  ``muxers``: our muxer ids in preference order, offered for
        early muxer negotiation when the protocol supports it.
        """

    @abc.abstractmethod
    async def secure_inbound(
        self, conn: RawConnection, muxers: Sequence[str] = ()
    ) -> SecureConnection:
        """Run the handshake as responder."""


# -- muxers ------------------------------------------------------------------------


class MuxedStream(ByteStream):
    """One stream of a muxed connection."""

    stream_id: int
    is_initiator: bool
    protocol: str | None
    """The application protocol negotiated on this stream (set by the host)."""

    async def close_for_shutdown(self, reason: BaseException) -> None:
        """Close our side because the host is shutting down, not because the
        application is done with the stream: like :meth:`close` (FIN, stop reading), but
        a read that would end before the peer finished sending raises ``reason`` rather
        than returning EOF, so the application never takes a cut-off stream for a
        complete one.  A stream whose peer had finished keeps what it sent readable.

        The muxers of this project implement it; the default is :meth:`close`.
        """
        await self.close()


class MuxedConnection(abc.ABC):
    """A session multiplexing streams over one SecureConnection."""

    @abc.abstractmethod
    async def open_stream(self) -> MuxedStream:
        """Open a new outbound stream.  Raises ConnectionClosed, ResourceLimitExceeded."""

    @abc.abstractmethod
    async def accept_stream(self) -> MuxedStream:
        """Wait for the next inbound stream.  Raises ConnectionClosed when the session ends."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Graceful close (e.g. GoAway) then close the channel.  Idempotent."""

    @abc.abstractmethod
    def abort(self, exc: BaseException | None = None) -> None:
        """Tear the session down now: every stream is reset.  Never raises."""

    @property
    @abc.abstractmethod
    def is_closed(self) -> bool: ...

    @abc.abstractmethod
    async def wait_closed(self) -> None:
        """Wait until the session has ended (for any reason)."""

    @property
    @abc.abstractmethod
    def streams(self) -> Sequence[MuxedStream]:
        """Streams currently open (not fully closed or reset)."""


class MemoryScope(Protocol):
    """Where a muxer accounts the memory a peer makes it hold (the connection's
    resource-manager scope, :class:`p2pkit.rcmgr.ConnectionScope`).

    ``reserve_memory(n)`` either reserves ``n`` bytes or raises
    :class:`~p2pkit.errors.ResourceLimitExceeded` having reserved nothing;
    ``release_memory(n)`` gives back bytes reserved earlier.  Neither blocks.
    """

    def reserve_memory(self, n: int) -> None: ...
    def release_memory(self, n: int) -> None: ...


class StreamMuxer(abc.ABC):
    """Factory of muxed sessions for one muxer protocol."""

    protocol_id: str
    accepts_memory_scope: ClassVar[bool] = False
    """True if ``new_session`` takes ``memory=``: the upgrader passes the connection's
    :class:`MemoryScope` only then, so muxers written without it keep working."""

    @abc.abstractmethod
    def new_session(
        self, conn: SecureConnection, *, is_initiator: bool, memory: MemoryScope | None = None
    ) -> MuxedConnection:
        """Start a session over ``conn`` (switching it to push mode).

        ``memory`` (only if :attr:`accepts_memory_scope`): reserve there what grows with
        the peer's behaviour (data received and not yet read); a refusal resets the
        stream it was for (:class:`~p2pkit.errors.StreamResetByLimit`), and everything
        reserved is released when the stream or the session ends.
        """


# -- peerstore and connection manager ---------------------------------------------


class Peerstore(abc.ABC):
    """What we know about other peers: keys, addresses (with TTLs), protocols, metadata."""

    @abc.abstractmethod
    def add_addrs(self, peer: PeerId, addrs: Sequence[Multiaddr], ttl: float) -> None: ...

    @abc.abstractmethod
    def addrs(self, peer: PeerId) -> list[Multiaddr]:
        """Addresses not yet expired."""

    def update_addrs(self, peer: PeerId, old_ttl: float, new_ttl: float) -> None:  # noqa: B027
        """Give the addresses last added with ``old_ttl`` the TTL ``new_ttl`` from now.

        go-libp2p's ``UpdateAddrs``: when a peer's last connection closes, its addresses
        drop from the connected TTL to the recently-connected one, so a peer that went
        away is not dialed from our store forever.  Stores that keep no TTLs may ignore
        it (the default).
        """

    @abc.abstractmethod
    def clear_addrs(self, peer: PeerId) -> None: ...

    @abc.abstractmethod
    def add_public_key(self, peer: PeerId, key: PublicKey) -> None: ...

    @abc.abstractmethod
    def public_key(self, peer: PeerId) -> PublicKey | None: ...

    @abc.abstractmethod
    def set_protocols(self, peer: PeerId, protocols: Sequence[str]) -> None: ...

    @abc.abstractmethod
    def protocols(self, peer: PeerId) -> list[str]: ...

    @abc.abstractmethod
    def put_metadata(self, peer: PeerId, key: str, value: object) -> None: ...

    @abc.abstractmethod
    def get_metadata(self, peer: PeerId, key: str) -> object | None: ...

    @abc.abstractmethod
    def peers(self) -> list[PeerId]: ...

    def remove_peer(self, peer: PeerId) -> None:  # noqa: B027 - optional hook
        """Forget everything about ``peer`` (key, addresses, protocols, metadata)."""

    def collect(self, keep: Callable[[PeerId], bool]) -> int:
        """Forget peers there is no reason to remember; return how many were forgotten.

        go-libp2p's peerstore GC: expired addresses are dropped, then every peer with no
        live address for which ``keep(peer)`` is False (the host keeps connected peers) is
        forgotten whole, and a store with a peer cap evicts further unkept peers, soonest
        address expiry first.  Stores that never grow may ignore it (the default).
        """
        return 0

    def close(self) -> None:  # noqa: B027 - optional hook
        """Flush and release storage."""


StreamHandler = Callable[[MuxedStream], Awaitable[None]]


# The network-layer interfaces live in p2pkit.network; re-exported here.
from p2pkit.network import (  # noqa: E402
    AdmissionTicket,
    BaseTransport,
    ConnectionGater,
    ConnectionHandler,
    ConnectionManager,
    HostConnection,
    InboundAdmission,
    Listener,
    MuxedConnectionHandler,
    MuxedTransport,
    MuxedTransportConnection,
    Transport,
)

__all__ = [
    "AdmissionTicket",
    "BaseTransport",
    "Buffer",
    "ByteStream",
    "Channel",
    "ConnectionGater",
    "ConnectionHandler",
    "ConnectionManager",
    "HostConnection",
    "InboundAdmission",
    "Listener",
    "MemoryScope",
    "MuxedConnection",
    "MuxedConnectionHandler",
    "MuxedStream",
    "MuxedTransport",
    "MuxedTransportConnection",
    "Peerstore",
    "RawConnection",
    "Receiver",
    "SecureConnection",
    "SecurityProtocol",
    "StreamHandler",
    "StreamMuxer",
    "Transport",
]
