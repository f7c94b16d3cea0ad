"""The swarm's outbound side: one connection to a peer out of its addresses.

A base class of :class:`~p2pkit.swarm.Swarm`, kept apart so that each module has one
job: ``dial_peer`` reuses an open connection or shares a dial in flight, the dialer
(:mod:`p2pkit.dialer`) races the addresses, and each attempt passes the gater, the
transport and the upgrade (or, for a transport with its own security, the peer id check
and ``allow_secured``).  A stopping swarm ends the attempts in flight
(:meth:`SwarmDialing._end_dials`): their dials raise ConnectionClosed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from p2pkit.errors import ConnectionClosed, DialToSelf, PeerIdMismatch
from p2pkit.gater import ConnectionGated
from p2pkit.network import MuxedTransport, MuxedTransportConnection, Transport
from p2pkit.plugins.select import choose_transport

if TYPE_CHECKING:
    from multiaddr import Multiaddr

    from p2pkit.abc import ConnectionGater
    from p2pkit.connection import Connection, Direction
    from p2pkit.dialer import Dialer
    from p2pkit.host_metrics import SwarmMetrics
    from p2pkit.network import BaseTransport
    from p2pkit.peer import PeerId
    from p2pkit.plugins.spec import PluginSpec
    from p2pkit.rcmgr import ConnectionScope, ResourceManager
    from p2pkit.upgrader import Upgrader


CLEANUP_TIMEOUT = 5.0
"""The last caller to leave a shared dial waits at most this long for it to unwind."""


class SharedDial:
    """A dial to a peer in flight, and how many callers wait for it (see dial_peer)."""

    __slots__ = ("task", "waiters")

    def __init__(self, task: asyncio.Task[Connection]) -> None:
        self.task = task
        self.waiters = 0


class SwarmDialing:
    """See the module docstring (the swarm's constructor calls :meth:`_init_dialing`)."""

    transports: list[BaseTransport]
    installed_transports: list[PluginSpec[Any]]
    upgrader: Upgrader
    dialer: Dialer[MuxedTransportConnection]
    gater: ConnectionGater
    rcmgr: ResourceManager
    dial_timeout: float
    closing: bool
    observer: SwarmMetrics | None
    local_peer: PeerId | None
    pending_dials: dict[PeerId, SharedDial]
    _attempts: set[asyncio.Task[Any]]
    """Dial attempts in flight (each runs in a task of the dialer's)."""

    if TYPE_CHECKING:  # the swarm's connection table

        def connections(self, peer: PeerId | None = None) -> list[Connection]: ...
        def add_connection(
            self, upgraded: MuxedTransportConnection, direction: Direction, scope: ConnectionScope
        ) -> Connection: ...
        def _admit_native(
            self, conn: MuxedTransportConnection, direction: Direction, scope: ConnectionScope
        ) -> None: ...

    def _init_dialing(self) -> None:
        self.pending_dials = {}
        self._attempts = set()

    def _end_dials(self) -> None:
        for attempt in list(self._attempts):
            attempt.cancel()

    async def dial_peer(
        self, peer: PeerId | None, addrs: Sequence[Multiaddr], *, use_backoff: bool
    ) -> Connection:
        """One connection to ``peer`` over ``addrs``: reuses an open connection and
        shares a dial already in flight (``peer`` None: just dial).  Our own peer id is
        refused at once (DialToSelf); an address that turns out to be ours is refused
        once its handshake shows it (``Swarm.add_connection``)."""
        if peer is not None and peer == self.local_peer:
            raise DialToSelf(f"dial to self ({peer}) refused")
        if peer is None:
            return await self._dial_addrs(addrs, None, use_backoff=False)
        existing = self.connections(peer)
        if existing:
            return existing[0]
        shared = self.pending_dials.get(peer)
        if shared is None:
            task = asyncio.get_running_loop().create_task(
                self._dial_addrs(addrs, peer, use_backoff=use_backoff), name="p2pkit-dial"
            )
            shared = self.pending_dials[peer] = SharedDial(task)
            task.add_done_callback(lambda _: self._dial_done(peer, shared))
        # The dial is its own task: a caller that is cancelled leaves it to the others
        # (it used to hand them its CancelledError), and the last one to leave ends it.
        shared.waiters += 1
        try:
            return await asyncio.shield(shared.task)
        finally:
            shared.waiters -= 1
            if not shared.waiters and not shared.task.done():
                shared.task.cancel()  # and its cleanup is over when we return (bounded)
                await asyncio.wait([shared.task], timeout=CLEANUP_TIMEOUT)

    def _dial_done(self, peer: PeerId, shared: SharedDial) -> None:
        if self.pending_dials.get(peer) is shared:
            del self.pending_dials[peer]
        if not shared.task.cancelled():
            shared.task.exception()  # retrieved: its waiters raise it themselves

    async def _dial_addrs(
        self, addrs: Sequence[Multiaddr], peer: PeerId | None, *, use_backoff: bool
    ) -> Connection:
        """Dial through the happy-eyeballs dialer (p2pkit.dialer); one connection results."""
        # Outbound connections count in the system and peer scopes, not per IP (the IP
        # limits are about strangers reaching us).  A refusal is logged by the manager.
        scope = self.rcmgr.open_connection("outbound", None)
        try:
            upgraded, _ = await self.dialer.dial(
                peer,
                addrs,
                lambda addr: self._dial_one(addr, peer, scope),
                _abort_upgraded,
                use_backoff=use_backoff,
            )
        except BaseException:
            scope.close()
            raise
        return self.add_connection(upgraded, "outbound", scope)

    async def _dial_one(
        self, addr: Multiaddr, peer: PeerId | None, scope: ConnectionScope
    ) -> MuxedTransportConnection:
        """One dial attempt: gater, transport, upgrade (the dialer races several).

        Runs in a task of its own (the dialer's); :meth:`_end_dials` cancels it, and the
        dial then fails with ConnectionClosed rather than running on past the stop.
        """
        if self.closing:
            raise ConnectionClosed("host is stopping")
        task = asyncio.current_task()
        assert task is not None
        self._attempts.add(task)
        try:
            if self.observer is not None:
                return await self.observer.dial(addr, self._attempt(addr, peer, scope))
            return await self._attempt(addr, peer, scope)
        except asyncio.CancelledError:
            if self.closing:
                raise ConnectionClosed("host is stopping") from None
            raise
        finally:
            self._attempts.discard(task)

    async def _attempt(
        self, addr: Multiaddr, peer: PeerId | None, scope: ConnectionScope
    ) -> MuxedTransportConnection:
        if not self.gater.allow_dial_addr(peer, addr):
            raise ConnectionGated("dial_addr", peer, addr)
        transport = choose_transport(
            self.transports, addr, listen=False, installed=self.installed_transports
        )
        if isinstance(transport, Transport):
            raw = await transport.dial(addr, timeout=self.dial_timeout)
            pending = self.upgrader.upgrade_outbound(raw, peer, memory=scope)
            if self.observer is not None:
                pending = self.observer.upgrade("outbound", pending)
            return await pending
        assert isinstance(transport, MuxedTransport)  # checked in __init__
        conn = await transport.dial(addr, timeout=self.dial_timeout)
        # A transport with built-in security: verify whom we reached, as the upgrader does.
        if peer is not None and conn.remote_peer != peer:
            error = PeerIdMismatch(peer, conn.remote_peer)
            conn.muxed.abort(error)
            raise error
        self._admit_native(conn, "outbound", scope)
        return conn


def _abort_upgraded(upgraded: MuxedTransportConnection) -> None:
    """Dispose of a dial attempt that lost the happy-eyeballs race."""
    upgraded.muxed.abort()


__all__ = ["SwarmDialing"]
