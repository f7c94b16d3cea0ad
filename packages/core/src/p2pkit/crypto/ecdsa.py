"""ECDSA keys on NIST curves (P-256, also P-384/P-521): public Data = DER
SubjectPublicKeyInfo, private Data = DER SEC1 ``ECPrivateKey`` (RFC 5915, what Go's
``x509.MarshalECPrivateKey`` writes), signature = DER ECDSA over SHA-256 (for every
curve, as go-libp2p does).
"""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature as _BadSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from p2pkit.crypto.keys import KeyType, PrivateKey, PublicKey, decoding_key
from p2pkit.errors import InvalidKey, UnsupportedKeyType

__all__ = ["EcdsaPrivateKey", "EcdsaPublicKey"]

_CURVES: tuple[type[ec.EllipticCurve], ...] = (ec.SECP256R1, ec.SECP384R1, ec.SECP521R1)
_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())


def _check_curve(curve: ec.EllipticCurve) -> None:
    if not isinstance(curve, _CURVES):
        raise UnsupportedKeyType(f"ECDSA curve {curve.name} is not supported (P-256/384/521 are)")


class EcdsaPublicKey(PublicKey):
    __slots__ = ("_der", "_key")
    key_type = KeyType.ECDSA

    def __init__(self, key: ec.EllipticCurvePublicKey) -> None:
        _check_curve(key.curve)
        self._key = key
        self._der = key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        super().__init__(self._der)

    @classmethod
    def from_bytes(cls, data: bytes) -> EcdsaPublicKey:
        with decoding_key("invalid ECDSA public key DER"):
            key = serialization.load_der_public_key(bytes(data))
            if not isinstance(key, ec.EllipticCurvePublicKey):
                raise InvalidKey(f"ECDSA public key DER holds a {type(key).__name__}")
            decoded = cls(key)
        return decoded

    def verify(self, data: bytes, signature: bytes) -> bool:
        try:
            self._key.verify(signature, data, _ECDSA_SHA256)
        except (_BadSignature, ValueError, TypeError):
            return False
        return True

    def to_bytes(self) -> bytes:
        return self._der

    def to_cryptography(self) -> ec.EllipticCurvePublicKey:
        return self._key


class EcdsaPrivateKey(PrivateKey):
    __slots__ = ("_key", "_public")
    key_type = KeyType.ECDSA

    def __init__(self, key: ec.EllipticCurvePrivateKey) -> None:
        _check_curve(key.curve)
        self._key = key
        self._public = EcdsaPublicKey(key.public_key())

    @classmethod
    def generate(cls, curve: ec.EllipticCurve | None = None) -> EcdsaPrivateKey:
        return cls(ec.generate_private_key(curve or ec.SECP256R1()))

    @classmethod
    def from_bytes(cls, data: bytes) -> EcdsaPrivateKey:
        with decoding_key("invalid ECDSA private key DER"):
            key = serialization.load_der_private_key(bytes(data), password=None)
            if not isinstance(key, ec.EllipticCurvePrivateKey):
                raise InvalidKey(f"ECDSA private key DER holds a {type(key).__name__}")
            decoded = cls(key)
        return decoded

    @property
    def public_key(self) -> EcdsaPublicKey:
        return self._public

    def sign(self, data: bytes) -> bytes:
        return self._key.sign(data, _ECDSA_SHA256)

    def to_bytes(self) -> bytes:
        return self._key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )

    def to_cryptography(self) -> ec.EllipticCurvePrivateKey:
        return self._key
