"""Key abstractions shared by every key type: the libp2p ``KeyType`` enum and the
``PublicKey`` / ``PrivateKey`` base classes.

A key is always held as a ready-to-use ``cryptography`` object so that signing and
verifying are one library call (no re-parsing per signature: Noise and TLS verify a
signature per connection).  The libp2p protobuf encoding is computed once at
construction, which makes equality, hashing and peer-id derivation cheap.
"""

from __future__ import annotations

import abc
import contextlib
import enum
import hmac
from collections.abc import Iterator
from typing import Any, ClassVar

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

from p2pkit.errors import InvalidKey, P2PError, UnsupportedKeyType
from p2pkit.protobuf import encode_bytes_field, encode_varint_field

__all__ = ["KeyType", "PrivateKey", "PublicKey", "decoding_key", "encode_key_protobuf"]


class KeyType(enum.IntEnum):
    """``enum KeyType`` of the libp2p ``crypto.proto`` (values are wire values)."""

    RSA = 0
    Ed25519 = 1
    Secp256k1 = 2
    ECDSA = 3


def encode_key_protobuf(key_type: KeyType, data: bytes) -> bytes:
    """Deterministic ``PublicKey``/``PrivateKey`` message: field 1 (Type), then field 2 (Data)."""
    return encode_varint_field(1, int(key_type)) + encode_bytes_field(2, data)


@contextlib.contextmanager
def decoding_key(what: str) -> Iterator[None]:
    """Turn any library failure while decoding ``what`` into a typed :class:`InvalidKey`.

    Key bytes come from the network and from disk, and ``cryptography`` raises a wide
    and version-dependent set of exceptions on bad input (``ValueError``,
    ``UnsupportedAlgorithm`` for an unknown algorithm or curve OID, ``TypeError``,
    ...).  Callers (Noise, TLS, identify, signed peer records, plaintext) only catch
    p2pkit's errors, so every decoding entry point runs under this guard: an
    unexpected exception becomes ``InvalidKey`` (``UnsupportedKeyType`` for an
    unsupported algorithm), chained to the original for debugging.
    """
    try:
        yield
    except P2PError:
        raise
    except UnsupportedAlgorithm as exc:
        raise UnsupportedKeyType(f"{what}: unsupported algorithm: {exc}") from exc
    except Exception as exc:
        raise InvalidKey(f"{what}: {type(exc).__name__}: {exc}") from exc


class PublicKey(abc.ABC):
    """A libp2p public key of one of the four key types."""

    __slots__ = ("_protobuf",)

    key_type: ClassVar[KeyType]

    def __init__(self, data: bytes) -> None:
        self._protobuf = encode_key_protobuf(self.key_type, data)

    @abc.abstractmethod
    def verify(self, data: bytes, signature: bytes) -> bool:
        """True iff ``signature`` is a valid signature of ``data``; never raises on bad input."""

    @abc.abstractmethod
    def to_bytes(self) -> bytes:
        """The key-type specific encoding carried in the protobuf ``Data`` field."""

    @abc.abstractmethod
    def to_cryptography(self) -> Any:
        """The underlying ``cryptography`` public key object."""

    def to_protobuf(self) -> bytes:
        """The canonical libp2p ``PublicKey`` protobuf (the input to peer-id derivation)."""
        return self._protobuf

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PublicKey):
            return NotImplemented
        return self._protobuf == other._protobuf

    def __hash__(self) -> int:
        return hash(self._protobuf)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.to_bytes()[-8:].hex()}...>"


class PrivateKey(abc.ABC):
    """A libp2p private key; ``public_key`` is derived once and cached."""

    __slots__ = ()

    key_type: ClassVar[KeyType]

    @property
    @abc.abstractmethod
    def public_key(self) -> PublicKey:
        """The matching public key."""

    @abc.abstractmethod
    def sign(self, data: bytes) -> bytes:
        """Sign ``data`` with the libp2p signature scheme of this key type."""

    @abc.abstractmethod
    def to_bytes(self) -> bytes:
        """The key-type specific encoding carried in the protobuf ``Data`` field."""

    @abc.abstractmethod
    def to_cryptography(self) -> Any:
        """The underlying ``cryptography`` private key object."""

    def to_protobuf(self) -> bytes:
        """The libp2p ``PrivateKey`` protobuf (the on-disk format of go/js libp2p)."""
        return encode_key_protobuf(self.key_type, self.to_bytes())

    def to_pem(self) -> bytes:
        """Unencrypted PKCS#8 PEM, readable by openssl and every ``cryptography`` user."""
        pem: bytes = self.to_cryptography().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return pem

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PrivateKey):
            return NotImplemented
        # Constant time: private key material must not leak through comparison timing.
        return hmac.compare_digest(self.to_protobuf(), other.to_protobuf())

    def __hash__(self) -> int:
        return hash(self.public_key)

    def __repr__(self) -> str:
        # Never print secret material.
        return f"<{type(self).__name__} for {self.public_key!r}>"
