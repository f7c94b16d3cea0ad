"""An in-process transport with built-in security and muxing, for host-level tests.

:class:`MemoryMuxedTransport` is what QUIC, WebTransport or WebRTC look like to the
swarm: ``dial`` and the listen handler yield a
:class:`~p2pkit.network.MuxedTransportConnection` -- already authenticated (the two
hosts' keys are exchanged in process, nothing is encrypted) and multiplexed by
:class:`MemoryMuxedSession`, a small in-memory muxer that passes
:class:`~p2pkit.testing.muxer_suite.MuxerSuite`.  No sockets, no plugins: hosts built
with it exercise the swarm, the host and its services alone.

Addresses are ``/memory/<n>`` (listening on ``/memory/0`` picks a free ``n``); the
transport can also claim another single-component protocol (``protocol="unix"``:
``/unix/<path>``), so path-style addresses can be tested without sockets.  Listeners
live in one process-wide table.

Register it with a host through :data:`MEMORY_TRANSPORT` (a transport plugin spec), or
start from :func:`memory_builder`::

    host = memory_builder().listen("/memory/0").build()
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
from collections import deque
from collections.abc import Sequence
from typing import Any

from multiaddr import Multiaddr

from p2pkit.abc import Buffer, MuxedConnection, MuxedStream
from p2pkit.builder import HostBuilder
from p2pkit.crypto import PrivateKey
from p2pkit.errors import ConnectionClosed, DialError, StreamClosed, StreamReset
from p2pkit.network import InboundAdmission, Listener, MuxedConnectionHandler, MuxedTransport
from p2pkit.network import MuxedTransportConnection as Native
from p2pkit.peer import PeerId
from p2pkit.plugins.registry import PluginRegistry
from p2pkit.plugins.spec import Components, PluginSpec

__all__ = [
    "MEMORY_TRANSPORT",
    "MemoryMuxedOptions",
    "MemoryMuxedSession",
    "MemoryMuxedTransport",
    "memory_builder",
    "memory_muxed_pair",
    "memory_registry",
]

SECURITY_PROTOCOL = "/p2pkit-memory/1.0.0"
MUXER_PROTOCOL = "/p2pkit-memory-mux/1.0.0"
WINDOW = 256 * 1024
"""Bytes a stream buffers for its reader before its writer waits (per stream)."""


class MemoryStream(MuxedStream):
    """One end of an in-memory stream; its twin is ``peer``."""

    def __init__(self, session: MemoryMuxedSession, stream_id: int, is_initiator: bool) -> None:
        self._session = session
        self.stream_id = stream_id
        self.is_initiator = is_initiator
        self.protocol: str | None = None
        self.peer: MemoryStream = self
        self._buf = bytearray()
        self._eof = False  # the peer closed its write side
        self._write_closed = False
        self._read_closed = False
        self._error: BaseException | None = None
        self._readable = asyncio.Event()
        self._reading = False
        self._writable = asyncio.Event()

    @property
    def _done(self) -> bool:
        return self._error is not None or (self._write_closed and self._eof)

    def _wake(self) -> None:
        self._readable.set()
        self._writable.set()

    async def read(self, max_bytes: int = -1) -> bytes:
        while True:
            if self._error is not None:
                raise self._error
            if self._buf:
                n = len(self._buf) if max_bytes < 0 else min(max_bytes, len(self._buf))
                data = bytes(self._buf[:n])
                del self._buf[:n]
                self.peer._writable.set()
                return data
            if self._eof:
                return b""
            if self._reading:  # as the muxers' streams (p2pkit.io)
                raise RuntimeError("concurrent read() on the same stream")
            self._readable.clear()
            self._reading = True
            try:
                await self._readable.wait()
            finally:
                self._reading = False

    async def write(self, data: Buffer) -> None:
        payload = bytes(data)
        pos = 0
        while True:
            if self._error is not None:
                raise self._error
            if self._write_closed:
                raise StreamClosed("stream closed for writing")
            if pos >= len(payload):
                return
            peer = self.peer
            if peer._read_closed:
                return  # the peer stopped reading: the bytes are dropped
            room = WINDOW - len(peer._buf)
            if room <= 0:
                self._writable.clear()
                await self._writable.wait()
                continue
            peer._buf += payload[pos : pos + room]
            pos += room
            peer._readable.set()

    async def close_write(self) -> None:
        if self._write_closed or self._error is not None:
            return
        self._write_closed = True
        self.peer._eof = True
        self.peer._readable.set()
        self._session._forget_if_done(self)

    async def close(self) -> None:
        await self.close_write()
        self._read_closed = True
        self._buf.clear()
        self.peer._writable.set()
        self._session._drained.set()  # a closing session stops waiting for this stream

    async def close_for_shutdown(self, reason: BaseException) -> None:
        await self.close_write()
        if not self._eof:  # else the peer has finished: what it sent stays readable
            await self.close()
            self._fail(reason)

    def reset(self) -> None:
        if self._done:
            return
        self._fail(StreamReset("stream reset"))
        self.peer._fail(StreamReset("stream reset by peer"))

    def _fail(self, error: BaseException) -> None:
        if self._error is None:
            self._error = error
            self._wake()
            self._session._forget_if_done(self)

    def unread(self, data: bytes) -> None:
        self._buf[:0] = data


class MemoryMuxedSession(MuxedConnection):
    """One end of an in-memory muxed connection; its twin is ``peer``."""

    def __init__(self, *, is_initiator: bool) -> None:
        self.is_initiator = is_initiator
        self.peer: MemoryMuxedSession = self
        self._ids = itertools.count(1 if is_initiator else 2, 2)
        self._streams: dict[int, MemoryStream] = {}
        self._incoming: deque[MemoryStream] = deque()
        self._incoming_ready = asyncio.Event()
        self._going_away = False  # no new streams either way
        self._closed = False
        self._closed_event = asyncio.Event()
        self._drained = asyncio.Event()

    async def open_stream(self) -> MuxedStream:
        if self._going_away or self._closed:
            raise ConnectionClosed("session closed")
        stream_id = next(self._ids)
        local = MemoryStream(self, stream_id, True)
        remote = MemoryStream(self.peer, stream_id, False)
        local.peer, remote.peer = remote, local
        self._streams[stream_id] = local
        self.peer._streams[stream_id] = remote
        self.peer._incoming.append(remote)
        self.peer._incoming_ready.set()
        return local

    async def accept_stream(self) -> MuxedStream:
        while True:
            if self._incoming and not self._closed:
                return self._incoming.popleft()
            if self._going_away or self._closed:
                raise ConnectionClosed("session closed")
            self._incoming_ready.clear()
            await self._incoming_ready.wait()

    def _forget_if_done(self, stream: MemoryStream) -> None:
        for end in (stream, stream.peer):
            if end._done:
                end._session._streams.pop(end.stream_id, None)
                if not end._session._streams:
                    end._session._drained.set()

    def _holding_close(self) -> bool:
        """Open streams, except those we closed both ways (close()): they only wait for
        the peer's FIN, whose data would be discarded (as yamux at its GoAway)."""
        ours = [*self._streams.values(), *(s.peer for s in self.peer._streams.values())]
        return any(not (s._write_closed and s._read_closed) for s in ours)

    async def close(self) -> None:
        """No new streams either way; wait for the open ones to finish; then end."""
        if self._closed:
            return
        for side in (self, self.peer):
            side._going_away = True
            side._incoming_ready.set()
        while self._holding_close():
            self._drained.clear()
            self.peer._drained.clear()
            waiters = [asyncio.ensure_future(s._drained.wait()) for s in (self, self.peer)]
            try:
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            except asyncio.CancelledError:
                self.abort(ConnectionClosed("close() cancelled"))  # end now, not never
                raise
            finally:
                for w in waiters:
                    w.cancel()
            if self._closed:
                return
        self._end(None)

    def abort(self, exc: BaseException | None = None) -> None:
        self._end(exc)

    def _end(self, exc: BaseException | None) -> None:
        for side in (self, self.peer):
            if side._closed:
                continue
            side._closed = side._going_away = True
            for stream in list(side._streams.values()):
                stream._fail(ConnectionClosed(f"session ended: {exc}" if exc else "session ended"))
            side._streams.clear()
            side._incoming.clear()
            side._incoming_ready.set()
            side._drained.set()
            side._closed_event.set()

    @property
    def is_closed(self) -> bool:
        return self._closed

    async def wait_closed(self) -> None:
        await self._closed_event.wait()

    @property
    def streams(self) -> Sequence[MuxedStream]:
        return list(self._streams.values())


def memory_muxed_pair() -> tuple[MemoryMuxedSession, MemoryMuxedSession]:
    """Two connected sessions, initiator first."""
    a = MemoryMuxedSession(is_initiator=True)
    b = MemoryMuxedSession(is_initiator=False)
    a.peer, b.peer = b, a
    return a, b


# -- the transport ----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class MemoryMuxedOptions:
    protocol: str = "memory"
    """The one multiaddr protocol this transport claims (``memory``, or ``unix``...)."""


_listeners: dict[tuple[str, str], _MemoryListener] = {}
_numbers = itertools.count(1)


class _MemoryListener(Listener):
    def __init__(
        self, transport: MemoryMuxedTransport, addr: Multiaddr, handler: MuxedConnectionHandler
    ) -> None:
        self.transport = transport
        self.addr = addr
        self.handler = handler

    @property
    def addrs(self) -> list[Multiaddr]:
        return [self.addr]

    async def close(self) -> None:
        key = self.transport._key(self.addr)
        if _listeners.get(key) is self:
            del _listeners[key]


class MemoryMuxedTransport(MuxedTransport):
    """See the module docstring."""

    name = "memory"

    def __init__(self, private_key: PrivateKey, options: MemoryMuxedOptions) -> None:
        self.private_key = private_key
        self.peer_id = PeerId.from_public_key(private_key.public_key)
        self.protocol = options.protocol

    def _claims(self, addr: Multiaddr) -> bool:
        parts = list(addr.items())
        return len(parts) == 1 and parts[0][0].name == self.protocol

    def _key(self, addr: Multiaddr) -> tuple[str, str]:
        return (self.protocol, str(next(iter(addr.items()))[1]))

    def can_dial(self, addr: Multiaddr) -> bool:
        return self._claims(addr)

    def can_listen(self, addr: Multiaddr) -> bool:
        return self._claims(addr)

    async def listen(
        self,
        addr: Multiaddr,
        handler: MuxedConnectionHandler,
        *,
        admit: InboundAdmission | None = None,
    ) -> Listener:
        # No handshake to guard (accepts_admission is False): the swarm admits each
        # connection when it arrives, as it does for any transport that does not ask.
        if self.protocol == "memory" and self._key(addr)[1] == "0":
            addr = Multiaddr(f"/memory/{next(_numbers)}")
        key = self._key(addr)
        if key in _listeners:
            raise OSError(f"address in use: {addr}")
        listener = _MemoryListener(self, addr, handler)
        _listeners[key] = listener
        return listener

    async def dial(self, addr: Multiaddr, *, timeout: float | None = None) -> Native:
        listener = _listeners.get(self._key(addr))
        if listener is None:
            raise DialError(f"connection refused: nothing listens on {addr}")
        local_addr = Multiaddr(f"/memory/{next(_numbers)}")
        ours, theirs = memory_muxed_pair()
        remote = listener.transport
        listener.handler(_native(theirs, self, local_addr, addr))
        await asyncio.sleep(0)  # a real transport answers asynchronously too
        return _native(ours, remote, addr, local_addr)


def _native(
    session: MemoryMuxedSession,
    remote: MemoryMuxedTransport,
    remote_addr: Multiaddr,
    local_addr: Multiaddr,
) -> Native:
    return Native(
        muxed=session,
        remote_peer=remote.peer_id,
        remote_public_key=remote.private_key.public_key,
        local_addr=local_addr,
        remote_addr=remote_addr,
        security_protocol=SECURITY_PROTOCOL,
        muxer_protocol=MUXER_PROTOCOL,
    )


def _factory(components: Components, options: Any) -> MemoryMuxedTransport:
    return MemoryMuxedTransport(components.private_key, options)


MEMORY_TRANSPORT = PluginSpec(
    kind="transport",
    name="memory",
    factory=_factory,
    options=MemoryMuxedOptions,
    description="in-process transport with built-in security and muxing (tests only)",
)


_registry: list[PluginRegistry] = []


def memory_registry() -> PluginRegistry:
    """The installed plugins plus :data:`MEMORY_TRANSPORT` (built once per process)."""
    if not _registry:
        registry = PluginRegistry()
        registry.add(MEMORY_TRANSPORT)
        _registry.append(registry)
    return _registry[0]


def memory_builder() -> HostBuilder:
    """A builder for a host whose only transport is the in-memory native one (no
    security protocol or muxer: nothing is upgraded).  Add ``.listen("/memory/0")``."""
    return HostBuilder(memory_registry()).transport("memory").option(security=[], muxers=[])
