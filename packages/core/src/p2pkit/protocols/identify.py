"""Identify (``/ipfs/id/1.0.0``) and identify push (``/ipfs/id/push/1.0.0``).

libp2p/specs identify: the responder writes one uvarint-length-prefixed ``Identify``
message and closes its write side; the requester reads until EOF (bounded) and merges
every message it got.  The host runs it on every new connection, fills the peerstore
and emits :class:`~p2pkit.events.PeerIdentified`.

Identify push: when our protocols or listen addresses change, we send a fresh message
on ``/ipfs/id/push/1.0.0`` to every connected peer that announced push support
(changes within :data:`PUSH_DELAY` are coalesced into one push).  A received push updates
only the fields it carries (an absent field is not a deletion).

Our message carries a signed peer record (RFC 0003: a ``libp2p-peer-record`` envelope,
RFC 0002) listing our listen addresses, as go- and js-libp2p do; a received record is
verified (signature, key matching the peer, a seq not older than the last) and its
addresses stored as certified (``CertifiedAddrs``); an invalid one is ignored and logged.

This module is the service; the message itself (:class:`IdentifyInfo`, its encoding,
:func:`read_messages`) is :mod:`p2pkit.protocols.identify_message`, importable from here
too.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING

from multiaddr import Multiaddr

from p2pkit.abc import MuxedStream
from p2pkit.crypto import PublicKey, public_key_from_protobuf
from p2pkit.errors import P2PError, ProtocolError
from p2pkit.events import Connected, Disconnected, Event, PeerIdentified
from p2pkit.logs import RepeatLimiter, get_logger, peer_extra, short_peer
from p2pkit.peer import PeerId
from p2pkit.peerstore import (
    CONNECTED_ADDR_TTL,
    MAX_ADDRS_PER_PEER,
    RECENTLY_CONNECTED_ADDR_TTL,
    bound_protocols,
)
from p2pkit.protocols.identify_fit import fit_addresses
from p2pkit.protocols.identify_message import (
    MAX_ADDR_BYTES,
    MAX_MESSAGE_SIZE,
    MAX_VERSION_BYTES,
    IdentifyInfo,
    read_messages,
)
from p2pkit.protocols.peer_record import (
    MAX_CACHED_ENVELOPE,
    VerifiedRecords,
    make_signed_peer_record,
)
from p2pkit.timerwheel import coarse_timeout
from p2pkit.varint import encode_uvarint

if TYPE_CHECKING:
    from p2pkit.connection import Connection
    from p2pkit.host import Host

__all__ = [
    "MAX_MESSAGE_SIZE",
    "MAX_RESULTS",
    "MAX_VERSION_BYTES",
    "PROTOCOL_ID",
    "PUSH_DELAY",
    "PUSH_PROTOCOL_ID",
    "TIMEOUT",
    "Identify",
    "IdentifyInfo",
    "read_messages",
]

log = get_logger("identify")  # p2pkit.identify (p2pkit.logs)

PROTOCOL_ID = "/ipfs/id/1.0.0"
PUSH_PROTOCOL_ID = "/ipfs/id/push/1.0.0"
TIMEOUT = 10.0
PUSH_DELAY = 0.05
"""Seconds during which local changes are coalesced into one push."""
MAX_RESULTS = 10_000
"""At most this many peers' results are kept (the oldest go first); a peer's result is
dropped anyway when its last connection closes."""


class Identify:
    """The identify service of one host."""

    def __init__(self, host: Host) -> None:
        # Lines a peer can trigger again and again are collapsed (p2pkit.logs).
        self._repeats = RepeatLimiter()
        self.host = host
        self.results: dict[PeerId, IdentifyInfo] = {}
        self.max_results = MAX_RESULTS
        # Our signed records of the current listen addresses: the whole list's, and the
        # one trimmed to fit 4 KiB when that is needed (identify_fit), each signed once.
        self._records: dict[tuple[Multiaddr, ...], bytes] = {}
        self._verified = VerifiedRecords()  # peers' envelopes, verified once each
        self._seq = 0
        self._push_task: asyncio.Task[None] | None = None
        self._running: dict[Connection, asyncio.Future[IdentifyInfo]] = {}
        self.pushes_sent = 0
        #: Identifications of new connections that failed, by error class (metrics).
        self.failures: Counter[str] = Counter()

    def install(self) -> None:
        self.host.set_stream_handler(PROTOCOL_ID, self._handle_identify)
        self.host.set_stream_handler(PUSH_PROTOCOL_ID, self._handle_push)
        self.host.events.add_listener(self._on_event, Connected, Disconnected)
        self.host.on_local_change(self._schedule_push)

    def local_info(self, conn: Connection | None) -> IdentifyInfo:
        """Our identify message for the peer of ``conn``, within 4 KiB (identify_fit)."""
        host = self.host
        observed = conn.remote_addr.to_bytes() if conn is not None and conn.remote_addr else None
        addrs = host.listen_addrs
        if tuple(addrs) not in self._records:
            # A new list: new records, with a higher seq (a list we had before would
            # otherwise get its old record back, which peers take as stale).
            self._records.clear()
        info = IdentifyInfo(
            protocol_version=host.config.protocol_version,
            agent_version=host.config.agent_version,
            public_key=host.private_key.public_key.to_protobuf(),
            listen_addrs=[a.to_bytes() for a in addrs],
            observed_addr=observed,
            protocols=host.protocols,
            signed_peer_record=self._signed_record(addrs),
        )
        return fit_addresses(info, addrs, self._signed_record)

    def _signed_record(self, listen_addrs: Sequence[Multiaddr]) -> bytes | None:
        addrs = tuple(listen_addrs)
        envelope = self._records.get(addrs)
        if envelope is None:
            # seq must grow across restarts too: derive it from the wall clock.
            self._seq = max(self._seq + 1, time.time_ns())
            envelope = make_signed_peer_record(
                self.host.private_key, self.host.peer_id, addrs, self._seq
            )
            self._records[addrs] = envelope
        return envelope

    async def _handle_identify(self, stream: MuxedStream) -> None:
        conn = self._conn_of(stream)
        msg = self.local_info(conn).encode()
        await stream.write(encode_uvarint(len(msg)) + msg)
        await stream.close_write()

    async def _handle_push(self, stream: MuxedStream) -> None:
        conn = self._conn_of(stream)
        info = IdentifyInfo()
        async with coarse_timeout(TIMEOUT):
            for msg in await read_messages(stream):
                info.merge(msg)
        if conn is not None:
            self._apply(conn, info, push=True)

    # -- push (sending) --------------------------------------------------------------------

    def _schedule_push(self) -> None:
        """Local protocols or addresses changed: push soon (coalescing bursts)."""
        if self._push_task is not None and not self._push_task.done():
            return
        if not self.host.connections():
            return
        self._push_task = self.host.tasks.spawn(self._push_later(), name="p2pkit-identify-push")

    async def _push_later(self) -> None:
        await asyncio.sleep(PUSH_DELAY)
        self._push_task = None
        await self.push()

    async def push(self) -> int:
        """Send our current identify message to every connected peer that supports push;
        returns the number of peers pushed to."""
        targets = [
            c
            for c in self.host.connections()
            if PUSH_PROTOCOL_ID in self.host.peerstore.protocols(c.peer)
        ]
        results = await asyncio.gather(
            *(self._push_one(c) for c in targets), return_exceptions=True
        )
        return sum(1 for r in results if r is None)

    async def _push_one(self, conn: Connection) -> None:
        try:
            async with coarse_timeout(TIMEOUT):
                stream = await conn.new_stream([PUSH_PROTOCOL_ID])
                try:
                    msg = self.local_info(conn).encode()
                    await stream.write(encode_uvarint(len(msg)) + msg)
                    await stream.close_write()
                    self.pushes_sent += 1
                finally:
                    await stream.close()
        except (P2PError, OSError, TimeoutError) as exc:
            self._repeats.log(
                log,
                logging.DEBUG,
                "push-failed",
                "identify push to %s failed: %s",
                short_peer(conn.peer),
                exc,
                extra=peer_extra(conn.peer),
            )
            raise

    def _conn_of(self, stream: MuxedStream) -> Connection | None:
        return self.host.connection_of(stream)

    def _on_event(self, event: Event) -> None:
        """Identify every new connection; forget a peer once its last one is gone."""
        if isinstance(event, Connected):
            self.host.tasks.spawn(self._identify_safe(event.connection), name="p2pkit-identify")
        elif isinstance(event, Disconnected) and not self.host.swarm.tracks(event.peer):
            self.results.pop(event.peer, None)

    async def _identify_safe(self, conn: Connection) -> None:
        try:
            await self.identify(conn)
        except (P2PError, OSError, TimeoutError) as exc:
            self.failures[type(exc).__name__] += 1
            self._repeats.log(
                log,
                logging.DEBUG,
                "failed",
                "identify with %s failed: %s",
                short_peer(conn.peer),
                exc,
                extra=peer_extra(conn.peer),
            )

    async def identify(self, conn: Connection) -> IdentifyInfo:
        """Ask the peer of ``conn`` who it is; fills the peerstore.

        Calls while one is running on the same connection share its stream: js-libp2p
        accepts one inbound identify stream per connection and resets a second one, which
        a caller racing the identify run on connect would otherwise open (over QUIC both
        streams arrive in the same flight).
        """
        running = self._running.get(conn)
        if running is None:
            running = asyncio.ensure_future(self._identify_once(conn))
            self._running[conn] = running
            running.add_done_callback(lambda f: self._identify_done(conn, f))
        return await asyncio.shield(running)

    def _identify_done(self, conn: Connection, fut: asyncio.Future[IdentifyInfo]) -> None:
        if self._running.get(conn) is fut:
            del self._running[conn]
        if not fut.cancelled():
            fut.exception()  # retrieved: every waiter may have been cancelled

    async def _identify_once(self, conn: Connection) -> IdentifyInfo:
        async with coarse_timeout(TIMEOUT):
            stream = await conn.new_stream([PROTOCOL_ID], lazy=True)  # we only read
            try:
                info = IdentifyInfo()
                for msg in await read_messages(stream):
                    info.merge(msg)
            finally:
                await stream.close()
        self._apply(conn, info)
        return info

    def _keep(self, peer: PeerId, info: IdentifyInfo) -> None:
        """Remember ``info`` while ``peer`` is connected (bounded, oldest dropped first)."""
        self.results.pop(peer, None)  # re-insert: the dict stays in age order
        if not self.host.swarm.tracks(peer):
            return  # the peer is already gone: nothing would prune its entry
        self.results[peer] = info
        while len(self.results) > self.max_results:
            del self.results[next(iter(self.results))]

    def _apply(self, conn: Connection, info: IdentifyInfo, *, push: bool = False) -> None:
        store = self.host.peerstore
        if info.public_key is not None:
            try:
                key: PublicKey = public_key_from_protobuf(info.public_key)
            except ValueError as exc:
                raise ProtocolError(f"identify: bad public key: {exc}") from exc
            if PeerId.from_public_key(key) != conn.peer:
                raise ProtocolError("identify: public key does not match the connection's peer")
            store.add_public_key(conn.peer, key)
        addrs = info.multiaddrs()
        if info.signed_peer_record is not None:
            try:
                record = self._verified.open(info.signed_peer_record)
                if record.peer != conn.peer:
                    raise ProtocolError("signed peer record is for another peer")
                # RFC 0003: older than the last one is stale (same seq: the same record).
                last = store.get_metadata(conn.peer, "PeerRecordSeq")
                if isinstance(last, int) and record.seq < last:
                    raise ProtocolError(f"stale signed peer record (seq {record.seq} < {last})")
            except ProtocolError as exc:
                self._repeats.log(
                    log,
                    logging.INFO,
                    "bad-record",
                    "identify from %s: ignoring peer record: %s",
                    short_peer(conn.peer),
                    exc,
                    extra=peer_extra(conn.peer),
                )
            else:
                store.put_metadata(conn.peer, "CertifiedAddrs", [str(a) for a in record.addrs])
                store.put_metadata(conn.peer, "PeerRecordSeq", record.seq)
                addrs = record.addrs + [a for a in addrs if a not in record.addrs]
        addrs = addrs[:MAX_ADDRS_PER_PEER]  # certified ones first: what a peerstore keeps
        if addrs:
            # A result that lands after the peer's last connection closed (its read
            # finished as the connection went) gets the TTL the disconnect gave the
            # other addresses; the connected TTL would keep them for a year.
            live = self.host.swarm.tracks(conn.peer)
            ttl = CONNECTED_ADDR_TTL if live else RECENTLY_CONNECTED_ADDR_TTL
            store.add_addrs(conn.peer, addrs, ttl)
        # A push carries what changed: absent fields keep their values.
        if info.protocols or not push:
            store.set_protocols(conn.peer, info.protocols)
        if info.agent_version or not push:
            store.put_metadata(conn.peer, "AgentVersion", info.agent_version)
        if info.protocol_version or not push:
            store.put_metadata(conn.peer, "ProtocolVersion", info.protocol_version)
        if push and conn.peer in self.results:
            old = self.results[conn.peer]
            info = dataclasses.replace(
                info,
                protocols=info.protocols or old.protocols,
                agent_version=info.agent_version or old.agent_version,
                protocol_version=info.protocol_version or old.protocol_version,
                listen_addrs=info.listen_addrs or old.listen_addrs,
                public_key=info.public_key or old.public_key,
            )
        info = _bounded(info)
        self._keep(conn.peer, info)
        self.host.events.emit(
            PeerIdentified(
                conn.peer,
                tuple(info.protocols),
                tuple(addrs),
                info.agent_version,
                info.protocol_version,
                info.observed(),
            )
        )


def _bounded(info: IdentifyInfo) -> IdentifyInfo:
    """What is kept of a peer's identify message while it is connected: what a peerstore
    keeps of it (:func:`~p2pkit.peerstore.bound_protocols`, ``MAX_ADDRS_PER_PEER``
    addresses) and a signed record only if the envelope cache would keep it.

    One 64 KiB message holds some 16,000 short protocol ids or 5,000 addresses, about
    1 MiB as Python objects: kept whole in ``results``, a peer's message cost fifty
    times what its idle connection does, for as long as it stayed connected.
    """
    record, observed = info.signed_peer_record, info.observed_addr
    return dataclasses.replace(
        info,
        protocols=bound_protocols(info.protocols),
        listen_addrs=[a for a in info.listen_addrs if len(a) <= MAX_ADDR_BYTES][
            :MAX_ADDRS_PER_PEER
        ],
        signed_peer_record=None if record and len(record) > MAX_CACHED_ENVELOPE else record,
        observed_addr=None if observed and len(observed) > MAX_ADDR_BYTES else observed,
    )
