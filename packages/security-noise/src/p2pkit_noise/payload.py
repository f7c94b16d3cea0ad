"""The libp2p ``NoiseHandshakePayload`` (protobuf, proto2) and its signature.

Schema (libp2p/specs ``noise/README.md``; field 3 is retired)::

    message NoiseExtensions {
        repeated bytes webtransport_certhashes = 1;
        repeated string stream_muxers = 2;
    }
    message NoiseHandshakePayload {
        optional bytes identity_key = 1;      // a libp2p PublicKey protobuf
        optional bytes identity_sig = 2;      // sig over PREFIX + noise static key
        optional NoiseExtensions extensions = 4;
    }

The payload travels only in handshake messages 2 (responder) and 3 (initiator), which
are encrypted: message 1 has no secrecy yet.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from p2pkit.crypto import PrivateKey, PublicKey, public_key_from_protobuf
from p2pkit.errors import InvalidKey, InvalidSignature, ProtocolError
from p2pkit.peer import PeerId
from p2pkit.protobuf import encode_bytes_field, iter_fields
from p2pkit_noise.errors import InvalidHandshakePayload

SIGNATURE_PREFIX = b"noise-libp2p-static-key:"
"""Prepended to the 32-byte X25519 static public key before signing (spec)."""

MAX_LIST_ENTRIES = 64
"""Bound on repeated fields we accept from a peer (muxers, certificate hashes)."""
MAX_MUXER_ID_LEN = 1024
MAX_CERTHASH_LEN = 1024
"""A WebTransport certificate hash is a multihash (34 bytes for sha2-256)."""

_WIRE_LEN = 2  # protobuf wire type "length-delimited"


@dataclasses.dataclass(frozen=True)
class NoiseExtensions:
    """Early data: WebTransport certificate hashes and stream muxer ids."""

    webtransport_certhashes: tuple[bytes, ...] = ()
    stream_muxers: tuple[str, ...] = ()

    def encode(self) -> bytes:
        parts = [encode_bytes_field(1, h) for h in self.webtransport_certhashes]
        parts += [encode_bytes_field(2, m.encode()) for m in self.stream_muxers]
        return b"".join(parts)

    @classmethod
    def decode(cls, data: bytes) -> NoiseExtensions:
        hashes: list[bytes] = []
        muxers: list[str] = []
        for field, wire, value in _fields(data):
            if field == 1:
                certhash = _as_bytes(field, wire, value)
                if len(certhash) > MAX_CERTHASH_LEN:
                    raise InvalidHandshakePayload("webtransport certificate hash too long")
                hashes.append(certhash)
                if len(hashes) > MAX_LIST_ENTRIES:
                    raise InvalidHandshakePayload("too many webtransport certificate hashes")
            elif field == 2:
                raw = _as_bytes(field, wire, value)
                if len(raw) > MAX_MUXER_ID_LEN:
                    raise InvalidHandshakePayload("stream muxer id too long")
                try:
                    muxers.append(raw.decode())
                except UnicodeDecodeError:
                    raise InvalidHandshakePayload("stream muxer id is not UTF-8") from None
                if len(muxers) > MAX_LIST_ENTRIES:
                    raise InvalidHandshakePayload("too many stream muxers")
        return cls(tuple(hashes), tuple(muxers))


@dataclasses.dataclass(frozen=True)
class HandshakePayload:
    """The decoded payload.  ``extensions`` is None when the peer sent no field 4."""

    identity_key: bytes
    identity_sig: bytes
    extensions: NoiseExtensions | None = None

    def encode(self) -> bytes:
        """Serialise in field order.  An empty ``NoiseExtensions`` is still sent
        (``22 00``), as js-libp2p and go-libp2p do."""
        out = encode_bytes_field(1, self.identity_key) + encode_bytes_field(2, self.identity_sig)
        if self.extensions is not None:
            out += encode_bytes_field(4, self.extensions.encode())
        return out

    @classmethod
    def decode(cls, data: bytes) -> HandshakePayload:
        """Parse; unknown fields are skipped (protobuf forward compatibility)."""
        key: bytes | None = None
        sig: bytes | None = None
        ext: NoiseExtensions | None = None
        for field, wire, value in _fields(data):
            if field == 1:
                key = _as_bytes(field, wire, value)
            elif field == 2:
                sig = _as_bytes(field, wire, value)
            elif field == 4:
                ext = NoiseExtensions.decode(_as_bytes(field, wire, value))
        if not key:
            raise InvalidHandshakePayload("handshake payload has no identity key")
        if not sig:
            raise InvalidHandshakePayload("handshake payload has no identity signature")
        return cls(key, sig, ext)


def _fields(data: bytes) -> list[tuple[int, int, object]]:
    try:
        return list(iter_fields(data))
    except ProtocolError as exc:
        raise InvalidHandshakePayload(f"malformed protobuf: {exc}") from exc


def _as_bytes(field: int, wire: int, value: object) -> bytes:
    if wire != _WIRE_LEN or not isinstance(value, bytes | bytearray | memoryview):
        raise InvalidHandshakePayload(f"field {field} has wire type {wire}, expected bytes")
    return bytes(value)


def make_payload(
    identity: PrivateKey, static_public: bytes, muxers: Sequence[str] | None
) -> HandshakePayload:
    """Build our payload: identity key, its signature over our static key, extensions.

    ``muxers`` None means "do not take part in early muxer negotiation" (an empty
    extensions message is still sent, like js-libp2p).
    """
    sig = identity.sign(SIGNATURE_PREFIX + static_public)
    ext = NoiseExtensions(stream_muxers=tuple(muxers or ()))
    return HandshakePayload(identity.public_key.to_protobuf(), sig, ext)


def verify_payload(payload: HandshakePayload, remote_static: bytes) -> tuple[PublicKey, PeerId]:
    """Check the remote's signature over its static key; return its key and peer id.

    Raises :class:`InvalidHandshakePayload` for an undecodable or unsupported key (its
    ``__cause__`` is the :class:`~p2pkit.errors.InvalidKey` /
    :class:`~p2pkit.errors.UnsupportedKeyType`) and
    :class:`~p2pkit.errors.InvalidSignature` for a bad signature.
    """
    try:
        key = public_key_from_protobuf(payload.identity_key)
    except InvalidKey as exc:
        raise InvalidHandshakePayload(f"remote identity key rejected: {exc}") from exc
    try:
        ok = key.verify(SIGNATURE_PREFIX + remote_static, payload.identity_sig)
    except Exception:  # a malformed signature may raise rather than return False
        ok = False
    if not ok:
        raise InvalidSignature("remote identity signature over its noise static key is invalid")
    return key, PeerId.from_public_key(key)
