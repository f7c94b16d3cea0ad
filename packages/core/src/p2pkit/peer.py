"""Peer ids: the multihash of a peer's canonical ``PublicKey`` protobuf.

Keys whose protobuf is at most 42 bytes (Ed25519, secp256k1) are embedded verbatim
with the *identity* multihash, so the public key can be recovered from the id; longer
ones (RSA, ECDSA) are hashed with sha2-256.  Text forms: legacy base58btc of the
multihash (``12D3KooW...``, ``16Uiu2...``, ``Qm...``; the canonical display form) and
CIDv1 with codec ``libp2p-key`` (0x72) in multibase base32 (``bafz...``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import Any, NoReturn

import base58

from p2pkit.crypto.encoding import public_key_from_protobuf
from p2pkit.crypto.keys import PublicKey
from p2pkit.errors import InvalidKey, InvalidPeerId, ProtocolError
from p2pkit.varint import decode_uvarint, encode_uvarint

__all__ = ["IDENTITY", "LIBP2P_KEY_CODEC", "MAX_INLINE_KEY_LENGTH", "SHA2_256", "PeerId"]

IDENTITY = 0x00
SHA2_256 = 0x12
LIBP2P_KEY_CODEC = 0x72
CID_V1 = 0x01
#: Encoded keys up to this many bytes are inlined with the identity multihash.
MAX_INLINE_KEY_LENGTH = 42
# Bound on text input: valid ids are < 80 characters; base58 decoding is quadratic.
_MAX_TEXT = 256


def _varint(buf: bytes, pos: int, what: str) -> tuple[int, int]:
    try:
        decoded = decode_uvarint(buf, pos)
    except ProtocolError as exc:
        raise InvalidPeerId(f"peer id: bad {what} varint: {exc}") from exc
    if decoded is None:
        raise InvalidPeerId(f"peer id: truncated {what}")
    return decoded


def _validate_multihash(mh: bytes) -> None:
    code, pos = _varint(mh, 0, "multihash code")
    length, pos = _varint(mh, pos, "multihash length")
    if len(mh) - pos != length:
        raise InvalidPeerId(
            f"peer id: multihash declares {length} digest bytes but carries {len(mh) - pos}"
        )
    if code == SHA2_256:
        if length != 32:
            raise InvalidPeerId(f"peer id: sha2-256 digest must be 32 bytes, got {length}")
    elif code == IDENTITY:
        if not 0 < length <= MAX_INLINE_KEY_LENGTH:
            raise InvalidPeerId(
                f"peer id: identity multihash must carry 1..{MAX_INLINE_KEY_LENGTH} bytes, "
                f"got {length}"
            )
    else:
        raise InvalidPeerId(
            f"peer id: unsupported multihash code 0x{code:x} (expected identity or sha2-256)"
        )


class PeerId:
    """An immutable, hashable peer id; equality and hashing by multihash bytes."""

    __slots__ = ("_b58", "_bytes")

    _bytes: bytes
    _b58: str | None

    def __init__(self, multihash: bytes | bytearray | memoryview) -> None:
        if not isinstance(multihash, bytes | bytearray | memoryview):
            raise TypeError(f"PeerId() takes multihash bytes, not {type(multihash).__name__}")
        mh = bytes(multihash)
        _validate_multihash(mh)
        object.__setattr__(self, "_bytes", mh)
        object.__setattr__(self, "_b58", None)

    # -- construction ----------------------------------------------------------------

    @classmethod
    def from_public_key(cls, key: PublicKey) -> PeerId:
        encoded = key.to_protobuf()
        if len(encoded) <= MAX_INLINE_KEY_LENGTH:
            mh = bytes((IDENTITY, len(encoded))) + encoded
        else:
            mh = bytes((SHA2_256, 32)) + hashlib.sha256(encoded).digest()
        return cls(mh)

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview) -> PeerId:
        return cls(data)

    @classmethod
    def from_string(cls, text: str) -> PeerId:
        """Parse the legacy base58btc form or a CIDv1 (multibase) form."""
        if not isinstance(text, str):
            raise TypeError(f"PeerId.from_string takes str, not {type(text).__name__}")
        text = text.strip()
        if not text:
            raise InvalidPeerId("peer id: empty string")
        if len(text) > _MAX_TEXT:
            raise InvalidPeerId(f"peer id: string too long ({len(text)} characters)")
        if text.startswith(("1", "Qm")):
            return cls(_b58decode(text))
        return cls(_decode_cid(text))

    # -- accessors -------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        return self._bytes

    def to_base58(self) -> str:
        b58 = self._b58
        if b58 is None:
            b58 = base58.b58encode(self._bytes).decode("ascii")
            object.__setattr__(self, "_b58", b58)
        return b58

    def to_cid(self) -> str:
        """CIDv1 ``libp2p-key`` in multibase base32 lower-case (``b`` prefix, no padding)."""
        raw = encode_uvarint(CID_V1) + encode_uvarint(LIBP2P_KEY_CODEC) + self._bytes
        return "b" + base64.b32encode(raw).decode("ascii").lower().rstrip("=")

    def extract_public_key(self) -> PublicKey | None:
        """The embedded public key for identity-multihash ids, else None.

        Raises ``InvalidKey`` when the embedded bytes are not a valid key.
        """
        if self._bytes[0] != IDENTITY:
            return None
        return public_key_from_protobuf(self._bytes[2:])

    def matches_public_key(self, key: PublicKey) -> bool:
        try:
            return PeerId.from_public_key(key) == self
        except (InvalidKey, InvalidPeerId):
            return False

    # -- dunder ----------------------------------------------------------------------

    def __setattr__(self, name: str, value: Any) -> NoReturn:
        raise AttributeError("PeerId is immutable")

    def __delattr__(self, name: str) -> NoReturn:
        raise AttributeError("PeerId is immutable")

    def __reduce__(self) -> tuple[type[PeerId], tuple[bytes]]:
        return (PeerId, (self._bytes,))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PeerId):
            return NotImplemented
        return self._bytes == other._bytes

    def __lt__(self, other: PeerId) -> bool:
        if not isinstance(other, PeerId):
            return NotImplemented
        return self._bytes < other._bytes

    def __hash__(self) -> int:
        return hash(self._bytes)

    def __str__(self) -> str:
        return self.to_base58()

    def __repr__(self) -> str:
        return f"PeerId({self.to_base58()!r})"


def _b58decode(text: str) -> bytes:
    try:
        decoded: bytes = base58.b58decode(text.encode("ascii"))
    except (ValueError, UnicodeEncodeError) as exc:
        raise InvalidPeerId(f"peer id: invalid base58btc {text!r}: {exc}") from exc
    return decoded


_B36 = frozenset("0123456789abcdefghijklmnopqrstuvwxyz")


def _b36decode(body: str) -> bytes:
    """Multibase base36: a big-endian number, each leading ``0`` one zero byte."""
    if not set(body) <= _B36:  # int() alone would take "_" and spaces too
        raise ValueError("not base36")
    digits = body.lstrip("0")
    zeros = bytes(len(body) - len(digits))
    if not digits:
        return zeros
    n = int(digits, 36)
    return zeros + n.to_bytes((n.bit_length() + 7) // 8, "big")


def _multibase_decode(text: str) -> bytes:
    prefix, body = text[0], text[1:]
    if not body:
        raise InvalidPeerId("peer id: empty multibase payload")
    try:
        if prefix in "bB":  # base32 (RFC 4648) without padding
            body = body.upper()
            return base64.b32decode(body + "=" * (-len(body) % 8))
        if prefix == "z":  # base58btc
            return _b58decode(body)
        if prefix in "kK":  # base36, as IPNS names write libp2p-key CIDs (k51...)
            return _b36decode(body.lower())
        if prefix in "fF":  # base16
            return bytes.fromhex(body)
        if prefix in "mu":  # base64 / base64url without padding
            padded = body + "=" * (-len(body) % 4)
            if prefix == "m":
                return base64.b64decode(padded, validate=True)
            return base64.urlsafe_b64decode(padded)
    except (binascii.Error, ValueError) as exc:
        raise InvalidPeerId(f"peer id: invalid multibase {prefix!r} payload: {exc}") from exc
    raise InvalidPeerId(f"peer id: {text!r} is neither base58btc (1.../Qm...) nor a multibase CID")


def _decode_cid(text: str) -> bytes:
    raw = _multibase_decode(text)
    version, pos = _varint(raw, 0, "CID version")
    if version != CID_V1:
        raise InvalidPeerId(f"peer id: CID version {version} (only CIDv1 is valid here)")
    codec, pos = _varint(raw, pos, "CID codec")
    if codec != LIBP2P_KEY_CODEC:
        raise InvalidPeerId(f"peer id: CID codec 0x{codec:x} is not libp2p-key (0x72)")
    return raw[pos:]
