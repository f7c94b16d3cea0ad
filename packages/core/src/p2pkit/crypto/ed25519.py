"""Ed25519 keys (the libp2p default): public Data = 32 raw bytes, private Data =
seed || public (64 bytes), signatures are plain RFC 8032 (64 bytes).

Signing and verifying are direct ``cryptography`` calls on objects parsed once.
"""

from __future__ import annotations

import hmac

from cryptography.exceptions import InvalidSignature as _BadSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519 as _ed

from p2pkit.crypto.keys import KeyType, PrivateKey, PublicKey, decoding_key
from p2pkit.errors import InvalidKey

__all__ = ["Ed25519PrivateKey", "Ed25519PublicKey"]

_RAW = serialization.Encoding.Raw


class Ed25519PublicKey(PublicKey):
    __slots__ = ("_key", "_raw")
    key_type = KeyType.Ed25519

    def __init__(self, key: _ed.Ed25519PublicKey) -> None:
        self._key = key
        self._raw = key.public_bytes(_RAW, serialization.PublicFormat.Raw)
        super().__init__(self._raw)

    @classmethod
    def from_bytes(cls, data: bytes) -> Ed25519PublicKey:
        if len(data) != 32:
            raise InvalidKey(f"Ed25519 public key must be 32 bytes, got {len(data)}")
        with decoding_key("invalid Ed25519 public key"):
            decoded = cls(_ed.Ed25519PublicKey.from_public_bytes(bytes(data)))
        return decoded

    def verify(self, data: bytes, signature: bytes) -> bool:
        if len(signature) != 64:
            return False
        try:
            self._key.verify(signature, data)
        except (_BadSignature, ValueError, TypeError):
            return False
        return True

    def to_bytes(self) -> bytes:
        return self._raw

    def to_cryptography(self) -> _ed.Ed25519PublicKey:
        return self._key


class Ed25519PrivateKey(PrivateKey):
    __slots__ = ("_key", "_public")
    key_type = KeyType.Ed25519

    def __init__(self, key: _ed.Ed25519PrivateKey) -> None:
        self._key = key
        self._public = Ed25519PublicKey(key.public_key())

    @classmethod
    def generate(cls) -> Ed25519PrivateKey:
        return cls(_ed.Ed25519PrivateKey.generate())

    @classmethod
    def from_bytes(cls, data: bytes) -> Ed25519PrivateKey:
        """Accept seed||public (64, preferred), seed||public||public (96, legacy) or a seed (32).

        The embedded public key must match the one derived from the seed: a mismatch
        means a corrupt or forged key file, and signing with it would produce
        signatures nobody can verify under the advertised identity.
        """
        data = bytes(data)
        if len(data) == 96:
            if not hmac.compare_digest(data[32:64], data[64:96]):
                raise InvalidKey("legacy 96-byte Ed25519 private key: public key copies differ")
            data = data[:64]
        if len(data) not in (32, 64):
            raise InvalidKey(f"Ed25519 private key must be 32, 64 or 96 bytes, got {len(data)}")
        with decoding_key("invalid Ed25519 private key"):
            key = cls(_ed.Ed25519PrivateKey.from_private_bytes(data[:32]))
        if len(data) == 64 and not hmac.compare_digest(data[32:], key._public.to_bytes()):
            raise InvalidKey("Ed25519 private key: embedded public key does not match the seed")
        return key

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self._public

    def sign(self, data: bytes) -> bytes:
        return self._key.sign(data)

    def to_bytes(self) -> bytes:
        seed = self._key.private_bytes(
            _RAW, serialization.PrivateFormat.Raw, serialization.NoEncryption()
        )
        return seed + self._public.to_bytes()

    def to_cryptography(self) -> _ed.Ed25519PrivateKey:
        return self._key
