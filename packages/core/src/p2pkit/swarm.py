"""The swarm: transports, listeners, dialing, upgrading, admission and the connection table.

As go-libp2p's swarm under its basic host: the swarm turns addresses into connections
and tracks them; it knows nothing of protocols.  Each new connection's inbound streams
go to one callback (the host's stream router).  Connection lifecycle is published on the
event bus only (:class:`~p2pkit.events.Connected`, :class:`~p2pkit.events.Disconnected`);
the connection manager, the peerstore bookkeeping and identify listen there.

A transport may yield a raw connection (upgraded here: security, then muxer) or a
:class:`~p2pkit.network.MuxedTransportConnection` that is already secured and muxed;
the swarm treats both alike from the ``allow_secured`` checkpoint on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any

from multiaddr import Multiaddr

from p2pkit.abc import ConnectionGater, Listener, MuxedStream, RawConnection
from p2pkit.addrs import dialable
from p2pkit.admission import Admission
from p2pkit.connection import Connection, Direction, StreamOpener
from p2pkit.dialer import Dialer
from p2pkit.errors import ConnectionClosed, DialToSelf, P2PError
from p2pkit.events import Connected, Disconnected, EventBus, Listen, ListenClose
from p2pkit.gater import ConnectionGated
from p2pkit.limits import LimitExceeded, ResourceLimits, limits_from
from p2pkit.logs import RepeatLimiter, peer_extra, short_peer
from p2pkit.network import BaseTransport, MuxedTransport, MuxedTransportConnection, Transport
from p2pkit.peer import PeerId
from p2pkit.plugins.select import choose_transport
from p2pkit.plugins.spec import PluginSpec
from p2pkit.rcmgr import ConnectionScope, ResourceManager, StreamScope
from p2pkit.swarm_dial import SwarmDialing
from p2pkit.tasks import TaskSet
from p2pkit.upgrader import Upgrader

if TYPE_CHECKING:
    from p2pkit.host_metrics import SwarmMetrics

log = logging.getLogger(__name__)

InboundStreamHandler = Callable[[Connection, MuxedStream], Coroutine[Any, Any, None]]


class Swarm(SwarmDialing):
    """Owns the transports, listeners, dialer, upgrader, admission and connections
    (dialing: :class:`~p2pkit.swarm_dial.SwarmDialing`)."""

    def __init__(
        self,
        *,
        transports: Sequence[BaseTransport],
        upgrader: Upgrader,
        dialer: Dialer[MuxedTransportConnection],
        gater: ConnectionGater,
        limits: ResourceLimits,
        events: EventBus,
        tasks: TaskSet,
        opener: StreamOpener,
        on_stream: InboundStreamHandler,
        dial_timeout: float,
        close_timeout: float,
        installed_transports: Sequence[PluginSpec[Any]] = (),
        local_peer: PeerId | None = None,
    ) -> None:
        # Lines a peer can trigger again and again are collapsed (p2pkit.logs).
        self._repeats = RepeatLimiter()
        for t in transports:
            if not isinstance(t, Transport | MuxedTransport):
                raise TypeError(f"{t!r} is neither a Transport nor a MuxedTransport")
        self.transports = list(transports)
        self.upgrader = upgrader
        self.dialer = dialer
        self.gater = gater
        self.limits = limits
        self.events = events
        self.tasks = tasks
        self.opener = opener
        self.on_stream = on_stream
        self.dial_timeout = dial_timeout
        self.close_timeout = close_timeout
        self.local_peer = local_peer
        """Our own peer id: a connection that turns out to be to it is refused."""
        # The registry's transport specs: "no transport for this address" names what to
        # enable or install.
        self.installed_transports = list(installed_transports)
        # Every admission count and limit: system, IP prefix, peer, connection, stream.
        self.rcmgr = ResourceManager(limits_from(limits))
        # What an inbound connection passes before its handshake (p2pkit.admission).
        self.admission = Admission(gater, self.rcmgr, self._repeats, lambda: self.closing)
        self.listeners: list[Listener] = []
        self._conns: dict[PeerId, list[Connection]] = {}
        self._scopes: dict[Connection, ConnectionScope] = {}
        self.closing = False
        self._init_dialing()
        # Handshake and dial metrics (p2pkit.host_metrics); None: nothing is recorded.
        self.observer: SwarmMetrics | None = None

    # -- listening ----------------------------------------------------------------------

    async def listen(self, addrs: Sequence[Multiaddr]) -> list[Multiaddr]:
        bound: list[Multiaddr] = []
        for addr in addrs:
            transport = choose_transport(
                self.transports, addr, listen=True, installed=self.installed_transports
            )
            admit = self.admission.admit
            if isinstance(transport, Transport):
                if transport.accepts_admission:  # it admits before its own handshake
                    listener = await transport.listen(addr, self._on_inbound, admit=admit)  # type: ignore[call-arg]
                else:
                    listener = await transport.listen(addr, self._on_inbound)
            else:
                assert isinstance(transport, MuxedTransport)  # checked in __init__
                if transport.accepts_admission:  # it admits before its handshakes
                    listener = await transport.listen(addr, self._on_inbound, admit=admit)
                else:
                    listener = await transport.listen(addr, self._on_inbound)
            self.listeners.append(listener)
            bound.extend(listener.addrs)
        self.events.emit(Listen(tuple(bound)))
        return bound

    @property
    def listen_addrs(self) -> list[Multiaddr]:
        """Dialable addresses: unspecified ones (0.0.0.0, ::) expanded to local ones."""
        return dialable(a for listener in self.listeners for a in listener.addrs)

    # -- inbound admission ----------------------------------------------------------------

    def _on_inbound(self, conn: RawConnection | MuxedTransportConnection) -> None:
        try:  # the ticket its transport took before the handshake, or a new admission
            scope = self.admission.scope_for(conn)
        except P2PError as refusal:  # logged (rate-limited) where it was decided
            if isinstance(conn, MuxedTransportConnection):
                conn.muxed.abort(refusal)
            else:
                conn.reset()
            return
        if isinstance(conn, MuxedTransportConnection):
            self._admit_native(conn, "inbound", scope)
            return
        self.tasks.spawn(self._upgrade_inbound(conn, scope), name="p2pkit-upgrade-inbound")

    def _admit_native(
        self, conn: MuxedTransportConnection, direction: Direction, scope: ConnectionScope
    ) -> None:
        """The ``allow_secured`` checkpoint for a transport that secured the connection."""
        if not self.gater.allow_secured(direction, conn.remote_peer, conn.remote_addr):
            refusal = ConnectionGated("secured", conn.remote_peer, conn.remote_addr)
            conn.muxed.abort(refusal)
            scope.close()
            if direction == "outbound":
                raise refusal
            self._repeats.log(log, logging.INFO, "gated-secured", "%s", refusal)
            return
        if conn.use_memory is not None:
            conn.use_memory(scope)
        if direction == "inbound":
            with contextlib.suppress(P2PError):
                self.add_connection(conn, "inbound", scope)

    async def _upgrade_inbound(self, raw: RawConnection, scope: ConnectionScope) -> None:
        pending = self.upgrader.upgrade_inbound(raw, memory=scope)
        if self.observer is not None:
            pending = self.observer.upgrade("inbound", pending)
        try:
            upgraded = await pending
        except BaseException as exc:
            scope.close()
            if not isinstance(exc, Exception):
                raise
            name = type(exc).__name__
            why = f"inbound upgrade from {raw.remote_addr} failed: {name}: {exc}"
            self._repeats.log(log, logging.INFO, ("upgrade", name), "%s", why)
            return
        with contextlib.suppress(P2PError):  # logged and aborted by add_connection
            self.add_connection(upgraded, "inbound", scope)

    # -- the connection table ---------------------------------------------------------------

    def add_connection(
        self, upgraded: MuxedTransportConnection, direction: Direction, scope: ConnectionScope
    ) -> Connection:
        """Admit a secured, muxed connection (limits, ``allow_upgraded``) and serve it."""
        if self.closing:
            closed = ConnectionClosed("host is stopping")
            upgraded.muxed.abort(closed)  # never leak a connection that finished late
            scope.close()
            raise closed
        conn = Connection(upgraded, direction, self.opener)
        refusal: P2PError | None = None
        if conn.peer == self.local_peer:  # an address of ours, dialled without /p2p/
            refusal = DialToSelf(f"{conn.remote_addr} is this host ({conn.peer})")
        elif not self.gater.allow_upgraded(conn):
            refusal = ConnectionGated("upgraded", conn.peer, conn.remote_addr)
        if refusal is None:
            try:
                scope.set_peer(conn.peer)
            except LimitExceeded as exc:
                refusal = exc
        if refusal is not None:
            why = f"{direction} connection to {short_peer(conn.peer)} refused: {refusal}"
            key = ("refused", direction, type(refusal).__name__)
            self._repeats.log(log, logging.INFO, key, "%s", why, extra=peer_extra(conn.peer))
            upgraded.muxed.abort(refusal)
            scope.close()
            raise refusal
        self._scopes[conn] = scope
        self._conns.setdefault(conn.peer, []).append(conn)
        self.events.emit(Connected(conn.peer, conn))
        self.tasks.spawn(self._serve_connection(conn), name=f"p2pkit-conn-{conn.peer}")
        return conn

    async def _serve_connection(self, conn: Connection) -> None:
        """The one task per connection: accept inbound streams until the session ends."""
        cancelled = False
        try:
            while True:
                try:
                    stream = await conn.muxed.accept_stream()
                except (ConnectionClosed, P2PError, OSError):
                    break
                self._dispatch(conn, stream)
                # This frame waits for the next stream for as long as the connection
                # lives: it must not keep the last one (and what it buffered) alive.
                del stream
        except asyncio.CancelledError:
            cancelled = True
            raise
        finally:
            await self._connection_ended(conn, cancelled=cancelled)

    def _dispatch(self, conn: Connection, stream: MuxedStream) -> None:
        """Hand an inbound stream to its own task, within the connection's limits."""
        try:
            stream_scope = self._scopes[conn].open_stream("inbound")
        except LimitExceeded:  # counted and logged (rate-limited) by rcmgr
            stream.reset()
            return
        self.tasks.spawn(self._run_stream(conn, stream, stream_scope), name="p2pkit-stream")

    async def _connection_ended(self, conn: Connection, *, cancelled: bool) -> None:
        """Close the connection once its last stream is done, then forget it.

        accept_stream ends when no new streams can come (GoAway, EOF, abort).  The
        connection is then *draining*: no longer handed out (the next dial to the peer
        makes a new one) and closed by us, which lets its open streams finish (the
        host's ``close_timeout``, as for any close, then an abort).  Waiting for the peer to close
        instead kept a connection whose peer sent GoAway and held the socket open in
        the table for good, where every ``new_stream`` on it failed.  js-libp2p closes
        on GoAway at once; go-libp2p keeps such a connection (the behaviour we had).

        A cancelled task (the loop shutting down with the host not stopped:
        asyncio.run cancels every task left) aborts the connection instead: nobody will
        close it, so waiting for its end would hang the shutdown.
        """
        conn.draining = True
        try:
            if not cancelled:
                await self.close_connection(conn)  # bounded by close_timeout, then abort
                with contextlib.suppress(Exception):
                    await conn.muxed.wait_closed()
        except asyncio.CancelledError:
            cancelled = True
            raise
        finally:
            if cancelled:
                conn.muxed.abort(ConnectionClosed("connection task cancelled"))
            self._remove_connection(conn)

    async def _run_stream(self, conn: Connection, stream: MuxedStream, scope: StreamScope) -> None:
        try:
            await self.on_stream(conn, stream)
        finally:
            scope.close()

    def _remove_connection(self, conn: Connection) -> None:
        scope = self._scopes.pop(conn, None)
        if scope is not None:
            scope.close()
        conns = self._conns.get(conn.peer)
        if conns and conn in conns:
            conns.remove(conn)
            if not conns:
                del self._conns[conn.peer]
            self.events.emit(Disconnected(conn.peer, conn))

    def connections(
        self, peer: PeerId | None = None, *, draining: bool = False
    ) -> list[Connection]:
        """Open connections (to ``peer``, or to everyone) that take new streams; with
        ``draining``, also those closing once their streams finish."""
        conns = (
            [c for cs in self._conns.values() for c in cs]
            if peer is None
            else self._conns.get(peer, ())
        )
        if draining:
            return [c for c in conns if not c.is_closed]
        return [c for c in conns if c.usable]

    def tracks(self, peer: PeerId) -> bool:
        """True while any connection to ``peer`` is in the table (closing ones too)."""
        return peer in self._conns

    async def close_connection(self, conn: Connection, *, close_streams: bool = False) -> None:
        """Graceful close bounded by ``close_timeout``, then abort.

        ``close_streams`` (shutdown): close our side of every open stream first, so
        the muxer does not wait for streams the application left open; their reads
        then raise ``ConnectionClosed("host is stopping")`` unless the peer had finished
        (``MuxedStream.close_for_shutdown``), never a silent EOF.
        """
        try:
            async with asyncio.timeout(self.close_timeout):
                if close_streams:
                    stopping = ConnectionClosed("host is stopping")
                    for stream in list(conn.streams):
                        with contextlib.suppress(Exception):
                            await stream.close_for_shutdown(stopping)
                await conn.muxed.close()
        except asyncio.CancelledError:
            conn.muxed.abort()
            raise
        except Exception:
            conn.muxed.abort()

    async def disconnect(self, peer: PeerId) -> None:
        conns = list(self._conns.get(peer, ()))
        await asyncio.gather(*(self.close_connection(c) for c in conns), return_exceptions=True)

    async def close(self) -> None:
        """Stop listening, end the dials in flight, close every connection (the host
        stops its services)."""
        self.closing = True
        self._end_dials()
        for listener in self.listeners:
            with contextlib.suppress(Exception):
                await listener.close()
        if self.listeners:
            self.events.emit(ListenClose(tuple(a for lst in self.listeners for a in lst.addrs)))
        self.listeners.clear()
        conns = [c for cs in self._conns.values() for c in cs]
        if conns:
            await asyncio.gather(
                *(self.close_connection(c, close_streams=True) for c in conns),
                return_exceptions=True,
            )

    async def close_transports(self) -> None:
        for transport in self.transports:
            with contextlib.suppress(Exception):
                await transport.close()


__all__ = ["InboundStreamHandler", "Swarm"]
