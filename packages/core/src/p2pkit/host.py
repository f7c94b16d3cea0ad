"""The Host: routes protocols and owns the services over a :class:`~p2pkit.swarm.Swarm`.

As go-libp2p's basic host: the swarm makes and tracks connections; the host adds the
protocol table (:class:`~p2pkit.streams.StreamRouter`), outbound stream negotiation and
the services (identify, ping, peerstore, connection manager, events).  Services are
wired through the event bus's synchronous listeners -- the one notification path for
connection lifecycle.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from multiaddr import Multiaddr

from p2pkit.abc import ConnectionGater, ConnectionManager, MuxedStream, Peerstore, StreamHandler
from p2pkit.addrs import split_peer, to_multiaddr
from p2pkit.config import HostConfig, load_config
from p2pkit.connection import Connection
from p2pkit.connmgr import BasicConnectionManager
from p2pkit.crypto import PrivateKey, generate_private_key
from p2pkit.deferred import build_now, deferred_muxer, deferred_security
from p2pkit.dialer import Dialer
from p2pkit.dnsaddr import DnsaddrResolver, expand, is_dnsaddr
from p2pkit.errors import AddressError, DialError, DialToSelf
from p2pkit.events import Connected, Disconnected, Event, EventBus
from p2pkit.gater import ConnectionGated, GatedSecurity
from p2pkit.host_metrics import HostMetrics, Sources
from p2pkit.limits import ResourceLimits
from p2pkit.metrics import Metrics
from p2pkit.network import BaseTransport, MuxedTransportConnection
from p2pkit.peer import PeerId
from p2pkit.peerstore import CONNECTED_ADDR_TTL, RECENTLY_CONNECTED_ADDR_TTL, MemoryPeerstore
from p2pkit.plugins.spec import Components
from p2pkit.protocols import install_builtin_protocols
from p2pkit.streams import StreamOpener, StreamRouter
from p2pkit.swarm import Swarm
from p2pkit.tasks import TaskSet
from p2pkit.upgrader import Upgrader

if TYPE_CHECKING:
    from p2pkit.protocols.identify import Identify

log = logging.getLogger(__name__)


#: Collect the whole peerstore once per this many peer departures (amortised: each
#: departure forgets its own peer at once when nothing is left to redial it by).
COLLECT_EVERY = 64


class Host:
    """A libp2p node.  Build with :class:`~p2pkit.builder.HostBuilder` or :meth:`from_config`.

    Use as ``async with host:`` (or ``await host.start()`` / ``await host.stop()``).
    """

    def __init__(self, config: HostConfig) -> None:
        self.config = config
        # dnspython is imported only when a /dnsaddr name is first resolved.
        self._dnsaddr = DnsaddrResolver(config.dialer.dns_servers, timeout=config.dial_timeout)
        self.private_key: PrivateKey = config.identity or generate_private_key("ed25519")
        self.peer_id: PeerId = PeerId.from_public_key(self.private_key.public_key)
        self.events = EventBus()
        self.tasks = TaskSet()
        self.components = Components(
            private_key=self.private_key, peer_id=self.peer_id, events=self.events
        )
        if config.peerstore is not None:
            self.peerstore: Peerstore = config.peerstore.spec.factory(
                self.components, config.peerstore.options
            )
        else:
            self.peerstore = MemoryPeerstore()
        self.peerstore.add_public_key(self.peer_id, self.private_key.public_key)
        if config.connection_manager is not None:
            self.connmgr: ConnectionManager = config.connection_manager.spec.factory(
                self.components, config.connection_manager.options
            )
        else:
            self.connmgr = BasicConnectionManager()
        self._local_change_hooks: list[Callable[[], None]] = []
        # Peers whose last connection closed since the last peerstore collection: counted
        # modulo COLLECT_EVERY, so it stays a small (interpreter-cached) int and a count
        # made during a burst of connections never keeps a block of the burst's memory.
        self._departures = 0
        self._stopping = False
        self._started = False
        self.router = StreamRouter(
            self.events,
            negotiation_timeout=config.negotiation_timeout,
            on_change=self._local_changed,
        )
        self.swarm = self._build_swarm(config)
        # One notification path: the swarm publishes, these listen (synchronously, so
        # nothing is missed): peerstore bookkeeping first, then the connection manager.
        self.events.add_listener(self._record_peer, Connected, Disconnected)
        self.events.add_listener(self._notify_connmgr, Connected, Disconnected)
        self.identify: Identify | None = install_builtin_protocols(self)
        self.metrics: Metrics | None = self._build_metrics(config)

    def _build_swarm(self, config: HostConfig) -> Swarm:
        transports = [p.spec.factory(self.components, p.options) for p in config.transports]
        # The gater's "secured" checkpoint runs inside each security protocol wrapper.
        gater: ConnectionGater = config.gater or ConnectionGater()
        # Built on first negotiation: offering a protocol imports nothing (p2pkit.deferred).
        offered = [deferred_security(p.spec, self.components, p.options) for p in config.security]
        muxers = [deferred_muxer(p.spec, self.components, p.options) for p in config.muxers]
        self._preferred = [*offered[:1], *muxers[:1]]  # built at start()
        security = [GatedSecurity(s, gater) for s in offered]
        opener = StreamOpener(
            config.limits,
            self.events,
            negotiation_timeout=config.negotiation_timeout,
            lazy_negotiation=config.lazy_negotiation,
        )
        return Swarm(
            transports=transports,
            upgrader=Upgrader(security, muxers, timeout=config.handshake_timeout),
            dialer=Dialer[MuxedTransportConnection](config.dialer),
            gater=gater,
            limits=config.limits,
            events=self.events,
            tasks=self.tasks,
            opener=opener,
            on_stream=self.router.handle_inbound,
            dial_timeout=config.dial_timeout,
            close_timeout=config.close_timeout,
            installed_transports=config.registry.specs("transport"),
            local_peer=self.peer_id,
        )

    def _build_metrics(self, config: HostConfig) -> Metrics | None:
        """The configured metrics plugin, wired to the host (nothing when none is)."""
        if config.metrics is None:
            return None
        metrics = config.metrics.spec.factory(self.components, config.metrics.options)
        if not isinstance(metrics, Metrics):
            raise TypeError(f"metrics plugin {config.metrics.spec.name!r} built no Metrics")
        identify, opener = self.identify, self.swarm.opener
        assert isinstance(opener, StreamOpener)  # built by _build_swarm
        sources = Sources(
            swarm=self.swarm,
            opener=opener,
            router=self.router,
            events=self.events,
            connmgr=self.connmgr,
            identify_failures=lambda: identify.failures if identify is not None else {},
        )
        HostMetrics(metrics, sources).attach()
        return metrics

    # -- the swarm's parts, for callers that knew them on the host -----------------------

    @property
    def transports(self) -> list[BaseTransport]:
        return self.swarm.transports

    @property
    def gater(self) -> ConnectionGater:
        return self.swarm.gater

    @property
    def dialer(self) -> Dialer[MuxedTransportConnection]:
        return self.swarm.dialer

    @property
    def upgrader(self) -> Upgrader:
        return self.swarm.upgrader

    @property
    def limits(self) -> ResourceLimits:
        return self.swarm.limits

    # -- construction shortcuts ------------------------------------------------------------

    @classmethod
    def from_config(cls, source: Any, **overrides: Any) -> Host:
        """Build from a config dict or a TOML file path (``[p2pkit]`` table)."""
        return cls(load_config(source, overrides=overrides))

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> Host:
        if self._started:
            return self
        self._started = True
        # The preferred security protocol and muxer, which most connections use, are
        # ready before the first one arrives; the others wait for a peer to pick them.
        build_now(self._preferred)
        if self.metrics is not None:
            await self.metrics.start()
        try:
            await self.connmgr.start()
            if self.config.listen:
                await self.listen(*self.config.listen)
        except BaseException:
            if self.metrics is not None:  # e.g. the port is taken: free the endpoint
                await self.metrics.stop()
            raise
        return self

    async def stop(self) -> None:
        if self._stopping:
            return
        self._stopping = True
        self.swarm.closing = True  # refuse connections from now on
        with contextlib.suppress(Exception):
            await self.connmgr.close()
        await self.swarm.close()
        await self.tasks.cancel_all(timeout=self.config.stop_timeout)
        await self.swarm.close_transports()
        with contextlib.suppress(Exception):
            self.peerstore.close()
        if self.metrics is not None:
            with contextlib.suppress(Exception):
                await self.metrics.stop()

    async def __aenter__(self) -> Host:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- listening ----------------------------------------------------------------------------

    async def listen(self, *addrs: Multiaddr | str | bytes) -> list[Multiaddr]:
        """Listen on more addresses; returns the addresses really bound."""
        bound = await self.swarm.listen([to_multiaddr(a) for a in addrs])
        self._local_changed()
        return bound

    @property
    def listen_addrs(self) -> list[Multiaddr]:
        """Dialable addresses: unspecified ones (0.0.0.0, ::) expanded to local ones."""
        return self.swarm.listen_addrs

    @property
    def addrs_with_peer_id(self) -> list[Multiaddr]:
        return [Multiaddr(f"{a}/p2p/{self.peer_id}") for a in self.listen_addrs]

    # -- connections ---------------------------------------------------------------------------

    def _record_peer(self, event: Event) -> None:
        """Peerstore bookkeeping of the connection path (an event-bus listener): the
        remote key and dialed address on connect; once the peer's last connection is gone,
        the recently-connected TTL for every address the connections kept alive."""
        if isinstance(event, Connected):
            conn = event.connection
            self.peerstore.add_public_key(conn.peer, conn.remote_public_key)
            if conn.direction == "outbound" and conn.remote_addr is not None:
                self.peerstore.add_addrs(conn.peer, [conn.remote_addr], CONNECTED_ADDR_TTL)
        elif isinstance(event, Disconnected):
            conn = event.connection
            if not self.swarm.tracks(conn.peer):
                # As go-libp2p: what the connection kept alive (the dialed address,
                # identify's listen addresses) now lives RECENTLY_CONNECTED_ADDR_TTL.
                self.peerstore.update_addrs(
                    conn.peer, CONNECTED_ADDR_TTL, RECENTLY_CONNECTED_ADDR_TTL
                )
                self._forget_if_gone(conn.peer)

    def _forget_if_gone(self, peer: PeerId) -> None:
        """Per-peer state is bounded (go-libp2p's peerstore GC): a peer whose last
        connection closed with no address left to redial is forgotten now; every
        :data:`COLLECT_EVERY` such departures the whole store is collected (expired
        addresses, the remembered-peer cap)."""
        if not self.peerstore.addrs(peer):
            self.peerstore.remove_peer(peer)
        self._departures = (self._departures + 1) % COLLECT_EVERY
        if self._departures == 0:
            self.peerstore.collect(self._keep_peer)

    def _keep_peer(self, peer: PeerId) -> bool:
        return peer == self.peer_id or self.swarm.tracks(peer)

    def _notify_connmgr(self, event: Event) -> None:
        if isinstance(event, Connected):
            self.connmgr.connected(event.connection)
        elif isinstance(event, Disconnected):
            self.connmgr.disconnected(event.connection)

    def connections(self, peer: PeerId | None = None) -> list[Connection]:
        """Open connections (to ``peer``, or to everyone) that take new streams (not
        the draining ones: :attr:`p2pkit.connection.Connection.draining`)."""
        return self.swarm.connections(peer)

    def connection_of(self, stream: MuxedStream) -> Connection | None:
        """The connection ``stream`` belongs to (None if it is closed or unknown).

        Constant time for a stream whose handler is running (what protocol handlers
        ask); other streams are looked up among the open connections.
        """
        conn = self.router.handled.get(stream)
        if conn is not None:
            return None if conn.is_closed else conn
        for conn in self.swarm.connections(draining=True):
            if stream in conn.streams:
                return conn
        return None

    def on_local_change(self, hook: Callable[[], None]) -> None:
        """Call ``hook()`` when our protocols or listen addresses change (identify push)."""
        self._local_change_hooks.append(hook)

    def _local_changed(self) -> None:
        for hook in self._local_change_hooks:
            try:
                hook()
            except Exception:
                log.exception("local change hook failed")

    async def disconnect(self, peer: PeerId) -> None:
        await self.swarm.disconnect(peer)

    # -- dialing -------------------------------------------------------------------------------

    async def connect(self, target: Multiaddr | str | bytes | PeerId) -> Connection:
        """Connect to a multiaddr (``/p2p/<id>`` checked when present) or a known peer id.

        A ``/dnsaddr`` name (given, or among the peer's known addresses) is resolved
        first (:mod:`p2pkit.dnsaddr`); without a ``/p2p/<id>`` its records must name one
        peer, which the dial then checks.  An existing connection to the peer is reused;
        concurrent connects to the same peer share one dial.  A malformed address raises
        AddressError.
        """
        if isinstance(target, PeerId):
            if target == self.peer_id:
                raise DialToSelf(f"dial to self ({target}) refused")
            if not self.gater.allow_dial_peer(target):
                raise ConnectionGated("dial_peer", target)
            existing = self.connections(target)
            if existing:  # before any lookup of the peer's /dnsaddr names
                return existing[0]
            addrs = self.peerstore.addrs(target)
            if not addrs:
                raise DialError(f"no known addresses for peer {target}")
            if any(is_dnsaddr(addr) for addr in addrs):
                addrs, _ = await expand(self._dnsaddr, addrs, target)
            return await self.swarm.dial_peer(target, addrs, use_backoff=True)
        maddr = to_multiaddr(target)
        transport_addr, peer = split_peer(maddr)
        if transport_addr is None:
            raise AddressError(f"{maddr} has no transport address")
        if peer is not None and not self.gater.allow_dial_peer(peer):
            raise ConnectionGated("dial_peer", peer)
        addrs = [transport_addr]
        if is_dnsaddr(transport_addr):
            addrs, named = await expand(self._dnsaddr, addrs, peer)
            if peer is None and named is not None and not self.gater.allow_dial_peer(named):
                raise ConnectionGated("dial_peer", named)
            peer = named
        return await self.swarm.dial_peer(peer, addrs, use_backoff=False)

    # -- streams ----------------------------------------------------------------------------------

    def set_stream_handler(
        self,
        protocol_id: str,
        handler: StreamHandler,
        match: Callable[[str], bool] | None = None,
    ) -> None:
        """Route inbound streams for ``protocol_id`` (or any id ``match`` accepts) to ``handler``.

        ``handler(stream)`` runs in its own task; the stream is closed when it returns
        and reset if it raises.
        """
        self.router.set_handler(protocol_id, handler, match)

    def remove_stream_handler(self, protocol_id: str) -> None:
        self.router.remove_handler(protocol_id)

    @property
    def protocols(self) -> list[str]:
        return self.router.protocols

    async def new_stream(
        self,
        target: Multiaddr | str | bytes | PeerId,
        protocols: Sequence[str] | str,
        *,
        lazy: bool | None = None,
    ) -> MuxedStream:
        """Open a stream to a peer (connecting if needed) speaking one of ``protocols``.

        ``lazy`` (default: the ``lazy_negotiation`` option): with a single protocol, send
        the proposal and the first data without waiting for the answer (0-RTT), which is
        checked on the first read.  Safe whatever the peer when the caller reads before it
        half-closes (ping, identify); see ``lazy_negotiation`` for why it is not the default.
        """
        conn = await self.connect(target)
        return await conn.new_stream(protocols, lazy=lazy)


__all__ = ["Host"]
