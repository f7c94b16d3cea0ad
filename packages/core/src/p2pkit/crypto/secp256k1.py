"""Secp256k1 keys, Bitcoin style: public Data = 33-byte compressed point, private
Data = 32-byte big-endian scalar, signature = DER ECDSA over SHA-256.

Signatures are produced in low-S form (BIP 62) because some verifiers (libsecp256k1
based ones) reject high-S signatures; both forms are accepted when verifying, like
go-libp2p does.
"""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature as _BadSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from p2pkit.crypto.keys import KeyType, PrivateKey, PublicKey, decoding_key
from p2pkit.errors import InvalidKey

__all__ = ["Secp256k1PrivateKey", "Secp256k1PublicKey"]

# Order of the secp256k1 group.
_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_CURVE = ec.SECP256K1()
_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())


class Secp256k1PublicKey(PublicKey):
    __slots__ = ("_compressed", "_key")
    key_type = KeyType.Secp256k1

    def __init__(self, key: ec.EllipticCurvePublicKey) -> None:
        if not isinstance(key.curve, ec.SECP256K1):
            raise InvalidKey(f"not a secp256k1 key: curve {key.curve.name}")
        self._key = key
        self._compressed = key.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint
        )
        super().__init__(self._compressed)

    @classmethod
    def from_bytes(cls, data: bytes) -> Secp256k1PublicKey:
        """Parse a compressed (33 bytes) or uncompressed (65 bytes) SEC1 point.

        Uncompressed input is re-encoded compressed, as go-libp2p does, so the peer id
        is always derived from the canonical form.
        """
        data = bytes(data)
        ok = (len(data) == 33 and data[0] in (2, 3)) or (len(data) == 65 and data[0] == 4)
        if not ok:
            raise InvalidKey(f"secp256k1 public key must be a 33/65-byte SEC1 point ({len(data)})")
        with decoding_key("invalid secp256k1 point"):
            decoded = cls(ec.EllipticCurvePublicKey.from_encoded_point(_CURVE, data))
        return decoded

    def verify(self, data: bytes, signature: bytes) -> bool:
        try:
            self._key.verify(signature, data, _ECDSA_SHA256)
        except (_BadSignature, ValueError, TypeError):
            return False
        return True

    def to_bytes(self) -> bytes:
        return self._compressed

    def to_cryptography(self) -> ec.EllipticCurvePublicKey:
        return self._key


class Secp256k1PrivateKey(PrivateKey):
    __slots__ = ("_key", "_public")
    key_type = KeyType.Secp256k1

    def __init__(self, key: ec.EllipticCurvePrivateKey) -> None:
        if not isinstance(key.curve, ec.SECP256K1):
            raise InvalidKey(f"not a secp256k1 key: curve {key.curve.name}")
        self._key = key
        self._public = Secp256k1PublicKey(key.public_key())

    @classmethod
    def generate(cls) -> Secp256k1PrivateKey:
        return cls(ec.generate_private_key(_CURVE))

    @classmethod
    def from_bytes(cls, data: bytes) -> Secp256k1PrivateKey:
        data = bytes(data)
        if len(data) != 32:
            raise InvalidKey(f"secp256k1 private key must be 32 bytes, got {len(data)}")
        scalar = int.from_bytes(data, "big")
        if not 0 < scalar < _N:
            raise InvalidKey("secp256k1 private key out of range")
        with decoding_key("invalid secp256k1 private key"):
            decoded = cls(ec.derive_private_key(scalar, _CURVE))
        return decoded

    @property
    def public_key(self) -> Secp256k1PublicKey:
        return self._public

    def sign(self, data: bytes) -> bytes:
        r, s = decode_dss_signature(self._key.sign(data, _ECDSA_SHA256))
        if s > _N // 2:
            s = _N - s
        return encode_dss_signature(r, s)

    def to_bytes(self) -> bytes:
        return self._key.private_numbers().private_value.to_bytes(32, "big")

    def to_cryptography(self) -> ec.EllipticCurvePrivateKey:
        return self._key
