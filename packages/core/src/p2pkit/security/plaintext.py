"""``/plaintext/2.0.0``: the spec's INSECURE security protocol (libp2p/specs plaintext).

No encryption and no proof of key possession: a peer can claim any identity.  It exists
so stacks can be tested without a real handshake and for interop tests.  It is never a
default; choose it explicitly (``security = ["plaintext"]``).

Each side sends one uvarint-length-prefixed ``Exchange{id = 1 (peer id bytes), pubkey = 2
(libp2p PublicKey protobuf)}`` and checks the peer's id matches its key.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING

from p2pkit.abc import Buffer, RawConnection, SecureConnection, SecurityProtocol
from p2pkit.channel import LayeredChannel
from p2pkit.crypto import PrivateKey, PublicKey, public_key_from_protobuf
from p2pkit.errors import HandshakeError, HandshakeTimeout, PeerIdMismatch, ProtocolError
from p2pkit.peer import PeerId
from p2pkit.protobuf import encode_bytes_field, iter_fields
from p2pkit.varint import decode_uvarint, encode_uvarint

if TYPE_CHECKING:
    from p2pkit.plugins.spec import Components

PROTOCOL_ID = "/plaintext/2.0.0"
MAX_EXCHANGE_SIZE = 16 * 1024  # RSA-8192 keys fit comfortably


@dataclasses.dataclass(frozen=True)
class PlaintextOptions:
    handshake_timeout: float | None = None  # None: the upgrader's deadline applies


class PlaintextConnection(LayeredChannel, SecureConnection):
    """The raw connection, labelled with the (unauthenticated) remote identity.

    A :class:`~p2pkit.channel.LayeredChannel` that transforms nothing: bytes pass
    through in both directions; the raw connection's flow control is ours.
    """

    _copy_writes = True  # writes go to the raw connection's write_nowait unchanged

    def __init__(
        self, raw: RawConnection, local: PeerId, remote: PeerId, remote_key: PublicKey
    ) -> None:
        super().__init__(raw)
        self.local_peer = local
        self.remote_peer = remote
        self.remote_public_key = remote_key
        self.security_protocol = PROTOCOL_ID
        self.early_muxer = None
        self._start_below()

    def _raw_write_many(self, parts: Sequence[Buffer]) -> None:
        self.raw.write_many(parts)  # nothing to transform: one call for all parts


class PlaintextSecurity(SecurityProtocol):
    """The insecure plaintext exchange; see the module docstring."""

    protocol_id = PROTOCOL_ID

    def __init__(self, private_key: PrivateKey, options: PlaintextOptions | None = None) -> None:
        self.private_key = private_key
        self.peer_id = PeerId.from_public_key(private_key.public_key)
        self.options = options or PlaintextOptions()

    def _exchange_message(self) -> bytes:
        body = encode_bytes_field(1, self.peer_id.to_bytes()) + encode_bytes_field(
            2, self.private_key.public_key.to_protobuf()
        )
        return encode_uvarint(len(body)) + body

    async def _read_exchange(self, conn: RawConnection) -> tuple[PeerId, PublicKey]:
        buf = bytearray()  # grown in place: a peer trickling bytes costs linear copying
        while True:
            decoded = decode_uvarint(buf)
            if decoded is not None:
                length, pos = decoded
                if length > MAX_EXCHANGE_SIZE:
                    raise HandshakeError(f"plaintext exchange of {length} bytes is too large")
                if len(buf) >= pos + length:
                    break
            elif len(buf) > 9:
                raise HandshakeError("bad plaintext length prefix")
            chunk = await conn.read(MAX_EXCHANGE_SIZE)
            if not chunk:
                raise HandshakeError("connection closed during the plaintext exchange")
            buf += chunk
        body, rest = bytes(buf[pos : pos + length]), bytes(buf[pos + length :])
        if rest:
            conn.unread(rest)
        raw_id: bytes | None = None
        raw_key: bytes | None = None
        try:
            for field, wire, value in iter_fields(body):
                if field == 1 and wire == 2 and isinstance(value, bytes):
                    raw_id = value
                elif field == 2 and wire == 2 and isinstance(value, bytes):
                    raw_key = value
        except ProtocolError as exc:
            raise HandshakeError(f"malformed plaintext exchange: {exc}") from exc
        if raw_id is None or raw_key is None:
            raise HandshakeError("plaintext exchange lacks the peer id or the public key")
        try:
            key = public_key_from_protobuf(raw_key)
            peer = PeerId.from_bytes(raw_id)
        except ValueError as exc:
            raise HandshakeError(f"bad identity in plaintext exchange: {exc}") from exc
        if PeerId.from_public_key(key) != peer:
            raise HandshakeError("plaintext exchange: peer id does not match the public key")
        return peer, key

    async def _handshake(self, conn: RawConnection, expected: PeerId | None) -> SecureConnection:
        try:
            async with asyncio.timeout(self.options.handshake_timeout):
                await conn.write(self._exchange_message())
                peer, key = await self._read_exchange(conn)
        except TimeoutError as exc:
            conn.reset()
            raise HandshakeTimeout("plaintext handshake timed out") from exc
        except BaseException:
            conn.reset()
            raise
        if expected is not None and peer != expected:
            conn.reset()
            raise PeerIdMismatch(expected, peer)
        return PlaintextConnection(conn, self.peer_id, peer, key)

    async def secure_outbound(
        self, conn: RawConnection, remote_peer: PeerId | None, muxers: Sequence[str] = ()
    ) -> SecureConnection:
        return await self._handshake(conn, remote_peer)

    async def secure_inbound(
        self, conn: RawConnection, muxers: Sequence[str] = ()
    ) -> SecureConnection:
        return await self._handshake(conn, None)


def plaintext_factory(components: Components, options: PlaintextOptions) -> PlaintextSecurity:
    return PlaintextSecurity(components.private_key, options)
