"""Identify (``/ipfs/id/1.0.0``) and identify push (``/ipfs/id/push/1.0.0``).

libp2p/specs identify: the responder writes one uvarint-length-prefixed ``Identify``
message and closes its write side; the requester reads until EOF (bounded) and merges
every message it got.  The host runs it on every new connection, fills the peerstore
and emits :class:`~p2pkit.events.PeerIdentified`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from typing import TYPE_CHECKING

from multiaddr import Multiaddr

from p2pkit.abc import MuxedStream
from p2pkit.errors import P2PError, ProtocolError
from p2pkit.events import PeerIdentified
from p2pkit.varint import decode_uvarint, encode_uvarint

if TYPE_CHECKING:
    from p2pkit.connection import Connection
    from p2pkit.crypto import PublicKey
    from p2pkit.host import Host

log = logging.getLogger(__name__)

PROTOCOL_ID = "/ipfs/id/1.0.0"
PUSH_PROTOCOL_ID = "/ipfs/id/push/1.0.0"
MAX_MESSAGE_SIZE = 64 * 1024
TIMEOUT = 10.0


@dataclasses.dataclass
class IdentifyInfo:
    protocol_version: str = ""
    agent_version: str = ""
    public_key: bytes | None = None
    listen_addrs: list[bytes] = dataclasses.field(default_factory=list)
    observed_addr: bytes | None = None
    protocols: list[str] = dataclasses.field(default_factory=list)
    signed_peer_record: bytes | None = None

    def encode(self) -> bytes:
        from p2pkit.protobuf import encode_bytes_field

        out = bytearray()
        if self.public_key is not None:
            out += encode_bytes_field(1, self.public_key)
        for addr in self.listen_addrs:
            out += encode_bytes_field(2, addr)
        for proto in self.protocols:
            out += encode_bytes_field(3, proto.encode())
        if self.observed_addr is not None:
            out += encode_bytes_field(4, self.observed_addr)
        out += encode_bytes_field(5, self.protocol_version.encode())
        out += encode_bytes_field(6, self.agent_version.encode())
        if self.signed_peer_record is not None:
            out += encode_bytes_field(8, self.signed_peer_record)
        return bytes(out)

    def merge(self, data: bytes) -> None:
        from p2pkit.protobuf import iter_fields

        for field, wire, value in iter_fields(data):
            if wire != 2 or not isinstance(value, bytes):
                continue
            if field == 1:
                self.public_key = value
            elif field == 2:
                self.listen_addrs.append(value)
            elif field == 3:
                self.protocols.append(value.decode("utf-8", "replace"))
            elif field == 4:
                self.observed_addr = value
            elif field == 5:
                self.protocol_version = value.decode("utf-8", "replace")
            elif field == 6:
                self.agent_version = value.decode("utf-8", "replace")
            elif field == 8:
                self.signed_peer_record = value

    def multiaddrs(self) -> list[Multiaddr]:
        out = []
        for raw in self.listen_addrs:
            with contextlib.suppress(Exception):
                out.append(Multiaddr(raw))
        return out

    def observed(self) -> Multiaddr | None:
        if self.observed_addr is None:
            return None
        try:
            addr = Multiaddr(self.observed_addr)
        except Exception:
            return None
        from p2pkit.host import split_peer

        with contextlib.suppress(Exception):
            stripped, _ = split_peer(addr)  # js appends /p2p/<id>: strip it
            return stripped
        return addr


async def read_messages(stream: MuxedStream, limit: int = MAX_MESSAGE_SIZE) -> list[bytes]:
    """Read length-prefixed messages until EOF; at most ``limit`` bytes in all."""
    buf = b""
    while True:
        chunk = await stream.read(limit)
        if not chunk:
            break
        buf += chunk
        if len(buf) > limit:
            raise ProtocolError(f"identify: more than {limit} bytes")
    out = []
    pos = 0
    while pos < len(buf):
        decoded = decode_uvarint(buf, pos)
        if decoded is None:
            raise ProtocolError("identify: truncated length prefix")
        length, pos = decoded
        if pos + length > len(buf):
            raise ProtocolError("identify: truncated message")
        out.append(buf[pos : pos + length])
        pos += length
    return out


class Identify:
    """The identify service of one host."""

    def __init__(self, host: Host) -> None:
        self.host = host
        self.results: dict[object, IdentifyInfo] = {}

    def install(self) -> None:
        self.host.set_stream_handler(PROTOCOL_ID, self._handle_identify)
        self.host.set_stream_handler(PUSH_PROTOCOL_ID, self._handle_push)
        self.host.on_connection(self._on_connection)
        self.host.components.extra["identify"] = self

    def local_info(self, conn: Connection | None) -> IdentifyInfo:
        host = self.host
        observed = conn.remote_addr.to_bytes() if conn is not None and conn.remote_addr else None
        return IdentifyInfo(
            protocol_version=host.config.protocol_version,
            agent_version=host.config.agent_version,
            public_key=host.private_key.public_key.to_protobuf(),
            listen_addrs=[a.to_bytes() for a in host.listen_addrs],
            observed_addr=observed,
            protocols=host.protocols,
        )

    async def _handle_identify(self, stream: MuxedStream) -> None:
        conn = self._conn_of(stream)
        msg = self.local_info(conn).encode()
        await stream.write(encode_uvarint(len(msg)) + msg)
        await stream.close_write()

    async def _handle_push(self, stream: MuxedStream) -> None:
        conn = self._conn_of(stream)
        info = IdentifyInfo()
        async with asyncio.timeout(TIMEOUT):
            for msg in await read_messages(stream):
                info.merge(msg)
        if conn is not None:
            self._apply(conn, info)

    def _conn_of(self, stream: MuxedStream) -> Connection | None:
        for conn in self.host.connections():
            if stream in conn.streams:
                return conn
        return None

    def _on_connection(self, conn: Connection) -> None:
        self.host._spawn(self._identify_safe(conn), name="p2pkit-identify")

    async def _identify_safe(self, conn: Connection) -> None:
        try:
            await self.identify(conn)
        except (P2PError, OSError, TimeoutError) as exc:
            log.debug("identify with %s failed: %s", conn.peer, exc)

    async def identify(self, conn: Connection) -> IdentifyInfo:
        """Ask the peer of ``conn`` who it is; fills the peerstore."""
        async with asyncio.timeout(TIMEOUT):
            stream = await conn.new_stream([PROTOCOL_ID])
            try:
                info = IdentifyInfo()
                for msg in await read_messages(stream):
                    info.merge(msg)
            finally:
                await stream.close()
        self._apply(conn, info)
        return info

    def _apply(self, conn: Connection, info: IdentifyInfo) -> None:
        from p2pkit.crypto import public_key_from_protobuf
        from p2pkit.peer import PeerId
        from p2pkit.peerstore import CONNECTED_ADDR_TTL

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
        if addrs:
            store.add_addrs(conn.peer, addrs, CONNECTED_ADDR_TTL)
        store.set_protocols(conn.peer, info.protocols)
        store.put_metadata(conn.peer, "AgentVersion", info.agent_version)
        store.put_metadata(conn.peer, "ProtocolVersion", info.protocol_version)
        self.results[conn.peer] = info
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
