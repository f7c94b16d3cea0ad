"""The Host: dials, listens, upgrades connections and routes streams to handlers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any

from multiaddr import Multiaddr

from p2pkit.abc import (
    ConnectionGater,
    ConnectionManager,
    Listener,
    MuxedStream,
    Peerstore,
    RawConnection,
    StreamHandler,
    Transport,
)
from p2pkit.connection import Connection, Direction
from p2pkit.dialer import Dialer
from p2pkit.errors import (
    AddressError,
    ConnectionClosed,
    DialError,
    P2PError,
)
from p2pkit.events import (
    ClosedStream,
    Connected,
    Disconnected,
    Event,
    EventBus,
    Listen,
    ListenClose,
    OpenedStream,
)
from p2pkit.gater import ConnectionGated, GatedSecurity
from p2pkit.limits import (
    ConnectionCounts,
    check_accept,
    check_dial,
    check_established,
    check_stream,
)
from p2pkit.multistream import select_inbound, select_outbound, select_outbound_lazy
from p2pkit.multistream.aio import LazyStream
from p2pkit.peerstore import CONNECTED_ADDR_TTL, RECENTLY_CONNECTED_ADDR_TTL, MemoryPeerstore
from p2pkit.plugins.select import choose_transport
from p2pkit.plugins.spec import Components
from p2pkit.upgrader import Upgraded, Upgrader

if TYPE_CHECKING:
    from p2pkit.config import HostConfig
    from p2pkit.crypto import PrivateKey
    from p2pkit.peer import PeerId

log = logging.getLogger(__name__)


def split_peer(addr: Multiaddr) -> tuple[Multiaddr | None, PeerId | None]:
    """Split ``/ip4/../tcp/../p2p/<id>`` into the transport part and the peer id."""
    from p2pkit.peer import PeerId

    parts = list(addr.items())
    if parts and parts[-1][0].name in ("p2p", "ipfs"):
        peer = PeerId.from_string(str(parts[-1][1]))
        rest = "".join(f"/{p.name}/{v}" if v is not None else f"/{p.name}" for p, v in parts[:-1])
        return (Multiaddr(rest) if rest else None), peer
    return addr, None


def to_multiaddr(value: Multiaddr | str) -> Multiaddr:
    if isinstance(value, Multiaddr):
        return value
    try:
        return Multiaddr(value)
    except Exception as exc:
        raise AddressError(f"invalid multiaddr {value!r}: {exc}") from exc


class Host:
    """A libp2p node.  Build with :class:`~p2pkit.config.HostBuilder` or :meth:`from_config`.

    Use as ``async with host:`` (or ``await host.start()`` / ``await host.stop()``).
    """

    def __init__(self, config: HostConfig) -> None:
        from p2pkit.crypto import generate_private_key
        from p2pkit.peer import PeerId

        self.config = config
        self.private_key: PrivateKey = config.identity or generate_private_key("ed25519")
        self.peer_id: PeerId = PeerId.from_public_key(self.private_key.public_key)
        self.events = EventBus()
        self.components = Components(private_key=self.private_key, peer_id=self.peer_id)
        self.components.extra["events"] = self.events
        self.components.extra["host"] = self

        self.transports: list[Transport] = [
            p.spec.factory(self.components, p.options) for p in config.transports
        ]
        # The gater's "secured" checkpoint runs inside each security protocol wrapper.
        self.gater: ConnectionGater = config.gater or ConnectionGater()
        security = [
            GatedSecurity(p.spec.factory(self.components, p.options), self.gater)
            for p in config.security
        ]
        self.limits = config.limits
        self._counts = ConnectionCounts()
        self.dialer: Dialer[Upgraded] = Dialer(config.dialer)
        muxers = [p.spec.factory(self.components, p.options) for p in config.muxers]
        self.upgrader = Upgrader(security, muxers, timeout=config.handshake_timeout)
        if config.peerstore is not None:
            self.peerstore: Peerstore = config.peerstore.spec.factory(
                self.components, config.peerstore.options
            )
        else:
            self.peerstore = MemoryPeerstore()
        self.peerstore.add_public_key(self.peer_id, self.private_key.public_key)
        self.components.extra["peerstore"] = self.peerstore
        # The connection path fills the peerstore through the event bus (a synchronous
        # listener: it never misses an event, unlike a bounded subscription).
        self.events.add_listener(self._record_peer, Connected, Disconnected)
        if config.connection_manager is not None:
            self.connmgr: ConnectionManager = config.connection_manager.spec.factory(
                self.components, config.connection_manager.options
            )
        else:
            from p2pkit.connmgr import BasicConnectionManager

            self.connmgr = BasicConnectionManager()
        self.components.extra["connection_manager"] = self.connmgr

        self._handlers: dict[str, StreamHandler] = {}
        self._matchers: list[tuple[str, Callable[[str], bool], StreamHandler]] = []
        # Inbound streams whose handler is running -> their connection (connection_of).
        self._handled: dict[MuxedStream, Connection] = {}
        self._listeners: list[Listener] = []
        self._conns: dict[PeerId, list[Connection]] = {}
        self._dials: dict[PeerId, asyncio.Future[Connection]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._started = False
        self._stopping = False
        self._connection_hooks: list[Callable[[Connection], None]] = []
        self._local_change_hooks: list[Callable[[], None]] = []

        from p2pkit.protocols import install_builtin_protocols

        install_builtin_protocols(self)

    # -- construction shortcuts ------------------------------------------------------------

    @classmethod
    def from_config(cls, source: Any, **overrides: Any) -> Host:
        """Build from a config dict or a TOML file path (``[p2pkit]`` table)."""
        from p2pkit.config import load_config

        return cls(load_config(source, overrides=overrides))

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> Host:
        if self._started:
            return self
        self._started = True
        await self.connmgr.start()
        if self.config.listen:
            await self.listen(*self.config.listen)
        return self

    async def stop(self) -> None:
        if self._stopping:
            return
        self._stopping = True
        with contextlib.suppress(Exception):
            await self.connmgr.close()
        for listener in self._listeners:
            with contextlib.suppress(Exception):
                await listener.close()
        if self._listeners:
            self.events.emit(ListenClose(tuple(a for lst in self._listeners for a in lst.addrs)))
        self._listeners.clear()
        conns = [c for cs in self._conns.values() for c in cs]
        if conns:
            await asyncio.gather(
                *(self._close_conn(c, close_streams=True) for c in conns), return_exceptions=True
            )
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5.0)
        for transport in self.transports:
            with contextlib.suppress(Exception):
                await transport.close()
        with contextlib.suppress(Exception):
            self.peerstore.close()

    async def _close_conn(self, conn: Connection, *, close_streams: bool = False) -> None:
        """Graceful close bounded to 2 s, then abort.

        ``close_streams`` (host shutdown): close our side of every open stream first, so
        the muxer does not wait for streams the application left open.
        """
        try:
            async with asyncio.timeout(2.0):
                if close_streams:
                    for stream in list(conn.streams):
                        with contextlib.suppress(Exception):
                            await stream.close()
                await conn.muxed.close()
        except BaseException:
            conn.muxed.abort()

    async def __aenter__(self) -> Host:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str | None = None) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # -- listening ----------------------------------------------------------------------------

    def _transport_for(self, addr: Multiaddr, *, listen: bool) -> Transport:
        installed = self.config.registry.specs("transport")
        return choose_transport(self.transports, addr, listen=listen, installed=installed)

    async def listen(self, *addrs: Multiaddr | str) -> list[Multiaddr]:
        """Listen on more addresses; returns the addresses really bound."""
        bound: list[Multiaddr] = []
        for value in addrs:
            addr = to_multiaddr(value)
            transport = self._transport_for(addr, listen=True)
            listener = await transport.listen(addr, self._on_inbound)
            self._listeners.append(listener)
            bound.extend(listener.addrs)
        self.events.emit(Listen(tuple(bound)))
        self._local_changed()
        return bound

    @property
    def listen_addrs(self) -> list[Multiaddr]:
        """Dialable addresses: unspecified ones (0.0.0.0, ::) expanded to local ones."""
        out: list[Multiaddr] = []
        for listener in self._listeners:
            for addr in listener.addrs:
                for expanded in _expand_unspecified(addr):
                    if expanded not in out:
                        out.append(expanded)
        return out

    @property
    def addrs_with_peer_id(self) -> list[Multiaddr]:
        return [Multiaddr(f"{a}/p2p/{self.peer_id}") for a in self.listen_addrs]

    # -- inbound -------------------------------------------------------------------------------

    def _on_inbound(self, raw: RawConnection) -> None:
        if self._stopping:
            raw.reset()
            return
        if not self.gater.allow_accept(raw.local_addr, raw.remote_addr):
            log.info("%s", ConnectionGated("accept", None, raw.remote_addr))
            raw.reset()
            return
        refusal = check_accept(self.limits, self._counts)
        if refusal is not None:
            log.warning("refusing inbound connection from %s: %s", raw.remote_addr, refusal)
            raw.reset()
            return
        self._counts.pending_inbound += 1
        self._spawn(self._upgrade_inbound(raw), name="p2pkit-upgrade-inbound")

    async def _upgrade_inbound(self, raw: RawConnection) -> None:
        try:
            upgraded = await self.upgrader.upgrade_inbound(raw)
        except Exception as exc:
            log.info(
                "inbound upgrade from %s failed: %s: %s", raw.remote_addr, type(exc).__name__, exc
            )
            return
        finally:
            self._counts.pending_inbound -= 1
        try:
            self._add_connection(upgraded, "inbound")
        except P2PError as exc:
            log.info("inbound connection from %s refused: %s", raw.remote_addr, exc)
            upgraded.muxed.abort(exc)

    # -- connections ----------------------------------------------------------------------------

    def _add_connection(self, upgraded: Upgraded, direction: Direction) -> Connection:
        if self._stopping:
            closed = ConnectionClosed("host is stopping")
            upgraded.muxed.abort(closed)  # never leak a connection that finished late
            raise closed
        conn = Connection(self, upgraded, direction)
        existing = sum(1 for c in self._conns.get(conn.peer, ()) if not c.is_closed)
        refusal: P2PError | None = check_established(self.limits, self._counts, direction, existing)
        if refusal is None and not self.gater.allow_upgraded(conn):
            refusal = ConnectionGated("upgraded", conn.peer, conn.remote_addr)
        if refusal is not None:
            log.info("%s connection to %s refused: %s", direction, conn.peer, refusal)
            upgraded.muxed.abort(refusal)
            raise refusal
        self._counts.add(direction, 1)
        self._conns.setdefault(conn.peer, []).append(conn)
        self.events.emit(Connected(conn.peer, conn))
        self._spawn(self._serve_connection(conn), name=f"p2pkit-conn-{conn.peer}")
        for hook in self._connection_hooks:
            try:
                hook(conn)
            except Exception:
                log.exception("connection hook failed")
        self.connmgr.connected(conn)
        return conn

    async def _serve_connection(self, conn: Connection) -> None:
        """The one task per connection: accept inbound streams until the session ends."""
        try:
            while True:
                try:
                    stream = await conn.muxed.accept_stream()
                except (ConnectionClosed, P2PError, OSError):
                    break
                limit = self.limits.max_inbound_streams_per_conn
                if limit is not None:
                    n = sum(1 for s in conn.streams if s is not stream and not s.is_initiator)
                    refusal = check_stream(limit, n, "inbound")
                    if refusal is not None:
                        log.info("resetting inbound stream from %s: %s", conn.peer, refusal)
                        stream.reset()
                        continue
                self._spawn(self._handle_inbound_stream(conn, stream), name="p2pkit-stream")
        finally:
            # accept_stream ends when no new streams can come (GoAway, EOF, abort);
            # the connection counts until its last stream is done.
            with contextlib.suppress(Exception):
                await conn.muxed.wait_closed()
            self._remove_connection(conn)

    def _remove_connection(self, conn: Connection) -> None:
        conns = self._conns.get(conn.peer)
        if conns and conn in conns:
            conns.remove(conn)
            self._counts.add(conn.direction, -1)
            if not conns:
                del self._conns[conn.peer]
            self.events.emit(Disconnected(conn.peer, conn))
            self.connmgr.disconnected(conn)

    def _record_peer(self, event: Event) -> None:
        """Peerstore bookkeeping of the connection path (an event-bus listener): the
        remote key and dialed address on connect; once the peer's last connection is gone,
        the recently-connected TTL for every address the connections kept alive."""
        if isinstance(event, Connected):
            conn = event.connection
            self.peerstore.add_public_key(conn.peer, conn.secure.remote_public_key)
            if conn.direction == "outbound" and conn.remote_addr is not None:
                self.peerstore.add_addrs(conn.peer, [conn.remote_addr], CONNECTED_ADDR_TTL)
        elif isinstance(event, Disconnected):
            conn = event.connection
            if conn.peer not in self._conns:
                # As go-libp2p: what the connection kept alive (the dialed address,
                # identify's listen addresses) now lives RECENTLY_CONNECTED_ADDR_TTL.
                self.peerstore.update_addrs(
                    conn.peer, CONNECTED_ADDR_TTL, RECENTLY_CONNECTED_ADDR_TTL
                )

    def connections(self, peer: PeerId | None = None) -> list[Connection]:
        if peer is None:
            return [c for cs in self._conns.values() for c in cs if not c.is_closed]
        return [c for c in self._conns.get(peer, ()) if not c.is_closed]

    def connection_of(self, stream: MuxedStream) -> Connection | None:
        """The connection ``stream`` belongs to (None if it is closed or unknown).

        Constant time for a stream whose handler is running (what protocol handlers
        ask); other streams are looked up among the open connections.
        """
        conn = self._handled.get(stream)
        if conn is not None:
            return None if conn.is_closed else conn
        for conn in self.connections():
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

    def on_connection(self, hook: Callable[[Connection], None]) -> None:
        """Call ``hook(conn)`` for every new connection (after Connected is emitted)."""
        self._connection_hooks.append(hook)

    async def disconnect(self, peer: PeerId) -> None:
        conns = list(self._conns.get(peer, ()))
        await asyncio.gather(*(self._close_conn(c) for c in conns), return_exceptions=True)

    # -- dialing -------------------------------------------------------------------------------

    async def connect(self, target: Multiaddr | str | PeerId) -> Connection:
        """Connect to a multiaddr (``/p2p/<id>`` checked when present) or a known peer id.

        An existing connection to the peer is reused; concurrent connects to the same
        peer share one dial.
        """
        from p2pkit.peer import PeerId

        if isinstance(target, PeerId):
            peer: PeerId | None = target
            if not self.gater.allow_dial_peer(target):
                raise ConnectionGated("dial_peer", target)
            addrs = self.peerstore.addrs(target)
            if not addrs:
                existing = self.connections(target)
                if existing:
                    return existing[0]
                raise DialError(f"no known addresses for peer {target}")
        else:
            maddr = to_multiaddr(target)
            transport_addr, peer = split_peer(maddr)
            if transport_addr is None:
                raise AddressError(f"{maddr} has no transport address")
            addrs = [transport_addr]
            if peer is not None and not self.gater.allow_dial_peer(peer):
                raise ConnectionGated("dial_peer", peer)
        by_id = isinstance(target, PeerId)
        if peer is not None:
            existing = self.connections(peer)
            if existing:
                return existing[0]
            pending = self._dials.get(peer)
            if pending is not None:
                return await asyncio.shield(pending)
            fut: asyncio.Future[Connection] = asyncio.get_running_loop().create_future()
            self._dials[peer] = fut
            try:
                conn = await self._dial_addrs(addrs, peer, use_backoff=by_id)
            except BaseException as exc:
                if not fut.done():
                    fut.set_exception(exc)
                    fut.exception()  # mark retrieved
                raise
            else:
                fut.set_result(conn)
                return conn
            finally:
                self._dials.pop(peer, None)
        return await self._dial_addrs(addrs, None)

    async def _dial_addrs(
        self, addrs: Sequence[Multiaddr], peer: PeerId | None, *, use_backoff: bool = False
    ) -> Connection:
        """Dial through the happy-eyeballs dialer (p2pkit.dialer); one connection results."""
        refusal = check_dial(self.limits, self._counts)
        if refusal is not None:
            log.warning("not dialing %s: %s", peer or addrs, refusal)
            raise refusal
        self._counts.pending_outbound += 1
        try:
            upgraded, _ = await self.dialer.dial(
                peer,
                addrs,
                lambda addr: self._dial_upgrade(addr, peer),
                _abort_upgraded,
                use_backoff=use_backoff,
            )
        finally:
            self._counts.pending_outbound -= 1
        return self._add_connection(upgraded, "outbound")

    async def _dial_upgrade(self, addr: Multiaddr, peer: PeerId | None) -> Upgraded:
        """One dial attempt: gater, transport, upgrade (the dialer races several)."""
        if not self.gater.allow_dial_addr(peer, addr):
            raise ConnectionGated("dial_addr", peer, addr)
        transport = self._transport_for(addr, listen=False)
        raw = await transport.dial(addr, timeout=self.config.dial_timeout)
        return await self.upgrader.upgrade_outbound(raw, peer)

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
        if match is None:
            self._handlers[protocol_id] = handler
        else:
            self._matchers = [m for m in self._matchers if m[0] != protocol_id]
            self._matchers.append((protocol_id, match, handler))
        self._local_changed()

    def remove_stream_handler(self, protocol_id: str) -> None:
        known = protocol_id in self._handlers or any(m[0] == protocol_id for m in self._matchers)
        self._handlers.pop(protocol_id, None)
        self._matchers = [m for m in self._matchers if m[0] != protocol_id]
        if known:
            self._local_changed()

    @property
    def protocols(self) -> list[str]:
        return list(self._handlers) + [m[0] for m in self._matchers if m[0] not in self._handlers]

    def _find_handler(self, protocol: str) -> StreamHandler | None:
        handler = self._handlers.get(protocol)
        if handler is not None:
            return handler
        for _, match, h in self._matchers:
            if match(protocol):
                return h
        return None

    async def _handle_inbound_stream(self, conn: Connection, stream: MuxedStream) -> None:
        try:
            protocol = await select_inbound(
                stream,
                lambda p: self._find_handler(p) is not None,
                timeout=self.config.negotiation_timeout,
            )
        except Exception as exc:
            log.debug("stream negotiation with %s failed: %s", conn.peer, exc)
            stream.reset()
            return
        handler = self._find_handler(protocol)
        if handler is None:  # removed in the meantime
            stream.reset()
            return
        stream.protocol = protocol
        self.events.emit(OpenedStream(conn.peer, protocol, stream.stream_id, True))
        self._handled[stream] = conn
        try:
            await handler(stream)
        except Exception as exc:
            log.debug("handler for %s failed: %s: %s", protocol, type(exc).__name__, exc)
            stream.reset()
        else:
            with contextlib.suppress(Exception):
                await stream.close()
        finally:
            self._handled.pop(stream, None)
            self.events.emit(ClosedStream(conn.peer, protocol, stream.stream_id, True))

    async def new_stream(
        self,
        target: Multiaddr | str | PeerId,
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
        return await self._open_stream_on(conn, protocols, lazy=lazy)

    async def _open_stream_on(
        self, conn: Connection, protocols: Sequence[str] | str, *, lazy: bool | None = None
    ) -> MuxedStream:
        if isinstance(protocols, str):
            protocols = [protocols]
        if not protocols:
            raise ValueError("new_stream needs at least one protocol id")
        limit = self.limits.max_outbound_streams_per_conn
        if limit is not None:
            n = sum(1 for s in conn.streams if s.is_initiator)
            refusal = check_stream(limit, n, "outbound")
            if refusal is not None:
                log.info("not opening a stream to %s: %s", conn.peer, refusal)
                raise refusal
        # The muxer may make us wait for a free slot (yamux: the peer's ACKs): bounded
        # like the negotiation that follows.
        async with asyncio.timeout(self.config.negotiation_timeout):
            stream = await conn.muxed.open_stream()
        try:
            if lazy is None:
                lazy = self.config.lazy_negotiation
            if len(protocols) == 1 and lazy:
                pending = await select_outbound_lazy(
                    stream, protocols[0], timeout=self.config.negotiation_timeout
                )
                negotiated: MuxedStream = LazyMuxedStream(pending, stream)
                protocol = protocols[0]
            else:
                protocol = await select_outbound(
                    stream, list(protocols), timeout=self.config.negotiation_timeout
                )
                negotiated = stream
        except BaseException:
            stream.reset()
            raise
        stream.protocol = protocol
        negotiated.protocol = protocol
        self.events.emit(OpenedStream(conn.peer, protocol, stream.stream_id, False))
        return negotiated


class LazyMuxedStream(MuxedStream):
    """A muxed stream whose protocol confirmation is read on first use (V1Lazy).

    Writes go straight to the muxed stream; the first read checks the responder's
    answer (raising ProtocolNotSupported on ``na``).
    """

    def __init__(self, lazy: LazyStream, inner: MuxedStream) -> None:
        self._lazy = lazy
        self.inner = inner
        self.stream_id = inner.stream_id
        self.is_initiator = inner.is_initiator
        self.protocol = lazy.protocol
        # Writes need no negotiation state: bind them straight to the muxed stream.
        self.write = inner.write  # type: ignore[method-assign]

    async def read(self, max_bytes: int = -1) -> bytes:
        return await self._lazy.read(max_bytes)

    async def write(self, data: bytes | bytearray | memoryview) -> None:
        await self.inner.write(data)

    async def close_write(self) -> None:
        # Read the responder's answer before our half-close: js-libp2p resets a stream
        # whose proposal, data and close all arrive before its handler runs ("Cannot
        # push data onto a stream that is closed"); go's lazy client waits likewise.
        # The answer is usually already here, so this rarely costs a round trip.
        await self._lazy.complete()
        await self.inner.close_write()

    async def close(self) -> None:
        await self._lazy.close()

    def reset(self) -> None:
        self.inner.reset()

    def unread(self, data: bytes) -> None:
        self.inner.unread(data)


def _abort_upgraded(upgraded: Upgraded) -> None:
    """Dispose of a dial attempt that lost the happy-eyeballs race."""
    upgraded.muxed.abort()


def _expand_unspecified(addr: Multiaddr) -> list[Multiaddr]:
    parts = list(addr.items())
    if not parts or parts[0][0].name not in ("ip4", "ip6"):
        return [addr]
    family, ip = parts[0][0].name, str(parts[0][1])
    if ip not in ("0.0.0.0", "::"):
        return [addr]
    rest = "".join(f"/{p.name}/{v}" for p, v in parts[1:])
    ips = ["127.0.0.1"] if family == "ip4" else ["::1"]
    try:
        fam = socket.AF_INET if family == "ip4" else socket.AF_INET6
        for info in socket.getaddrinfo(socket.gethostname(), None, fam):
            candidate = str(info[4][0]).split("%")[0]
            if candidate not in ips:
                ips.append(candidate)
    except OSError:
        pass
    return [Multiaddr(f"/{family}/{ip_}{rest}") for ip_ in ips]
