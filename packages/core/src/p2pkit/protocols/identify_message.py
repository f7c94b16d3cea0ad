"""The identify message (libp2p/specs identify): its fields, their protobuf encoding,
and how the messages a peer sends are read and merged.

Kept apart from the service (:mod:`p2pkit.protocols.identify`), which decides when to
ask, answer and push, and what a received message changes in the peerstore: this is
only the wire format, which the fuzz harness drives on its own.  A peer may send its
answer as several length-prefixed messages (and a push carries only what changed), so
a message is *merged* into an :class:`IdentifyInfo`: repeated fields add up, the last
value of the others wins.  Malformed listen or observed addresses are skipped, not
fatal (as go does).
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import TYPE_CHECKING

from multiaddr import Multiaddr

from p2pkit.addrs import split_peer, to_multiaddr
from p2pkit.errors import AddressError, ProtocolError
from p2pkit.protobuf import encode_bytes_field, iter_fields
from p2pkit.varint import decode_uvarint

if TYPE_CHECKING:
    from p2pkit.abc import MuxedStream

__all__ = [
    "MAX_ADDR_BYTES",
    "MAX_LISTEN_ADDRS",
    "MAX_MESSAGE_SIZE",
    "MAX_VERSION_BYTES",
    "IdentifyInfo",
    "read_messages",
]

MAX_MESSAGE_SIZE = 64 * 1024
"""What :func:`read_messages` reads at most from one stream (all messages together)."""
MAX_VERSION_BYTES = 256
"""A peer's agent and protocol versions are cut to this many bytes: they are kept (as
peerstore metadata) while the peer is remembered, after it left too, and one message
could carry 64 KiB of each.  Real ones are short (``kubo/0.29.0/3f0947b``)."""
MAX_ADDR_BYTES = 1024
"""A listen or observed address longer than this is skipped: real ones take tens of
bytes (a ``/dns`` name of 253 characters and two WebTransport certificate hashes fit),
and each one decoded and kept is a peer's to grow up to the whole message."""
MAX_LISTEN_ADDRS = 64
"""Listen addresses decoded of one message, at most (a peerstore keeps 64 per peer:
``p2pkit.peerstore.MAX_ADDRS_PER_PEER``).  Decoding one takes ~20 us: a 64 KiB push
of 5,000 short addresses cost 100 ms of CPU, and a peer could push again and again."""


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
                self.protocol_version = value[:MAX_VERSION_BYTES].decode("utf-8", "replace")
            elif field == 6:
                self.agent_version = value[:MAX_VERSION_BYTES].decode("utf-8", "replace")
            elif field == 8:
                self.signed_peer_record = value

    def multiaddrs(self) -> list[Multiaddr]:
        """The listen addresses that decode, of the first :data:`MAX_LISTEN_ADDRS`; a
        malformed one is skipped (as go does)."""
        out = []
        for raw in self.listen_addrs[:MAX_LISTEN_ADDRS]:
            if len(raw) > MAX_ADDR_BYTES:
                continue
            with contextlib.suppress(AddressError):
                out.append(to_multiaddr(raw))
        return out

    def observed(self) -> Multiaddr | None:
        if self.observed_addr is None or len(self.observed_addr) > MAX_ADDR_BYTES:
            return None
        try:  # checked now: py-multiaddr decodes lazily (p2pkit.addrs.to_multiaddr)
            addr = to_multiaddr(self.observed_addr)
        except AddressError:
            return None
        with contextlib.suppress(Exception):
            stripped, _ = split_peer(addr)  # js appends /p2p/<id>: strip it
            return stripped
        return addr


async def read_messages(stream: MuxedStream, limit: int = MAX_MESSAGE_SIZE) -> list[bytes]:
    """Read length-prefixed messages until EOF; at most ``limit`` bytes in all.

    A bytearray: a peer sending its message a byte per frame costs a linear amount of
    copying, not ``limit`` squared over two."""
    buf = bytearray()
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
        out.append(bytes(buf[pos : pos + length]))
        pos += length
    return out
