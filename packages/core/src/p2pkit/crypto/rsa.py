"""RSA keys: public Data = DER SubjectPublicKeyInfo (PKIX), private Data = DER
PKCS#1 ``RSAPrivateKey``, signature = RSASSA-PKCS1-v1_5 with SHA-256.

Size policy: we never generate keys below 2048 bits, but accept 1024..8192 bits from
others (old IPFS nodes use 2048, some tests 1024).  The upper bound caps the CPU a
remote can make us spend verifying one signature.
"""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature as _BadSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from p2pkit.crypto.keys import KeyType, PrivateKey, PublicKey, decoding_key
from p2pkit.errors import InvalidKey

__all__ = ["MAX_RSA_BITS", "MIN_RSA_BITS", "MIN_RSA_GENERATE_BITS", "RsaPrivateKey", "RsaPublicKey"]

MIN_RSA_BITS = 1024
MIN_RSA_GENERATE_BITS = 2048
MAX_RSA_BITS = 8192
_PAD = padding.PKCS1v15()
_SHA256 = hashes.SHA256()


def _check_size(bits: int) -> None:
    if not MIN_RSA_BITS <= bits <= MAX_RSA_BITS:
        raise InvalidKey(f"RSA key of {bits} bits outside {MIN_RSA_BITS}..{MAX_RSA_BITS}")


class RsaPublicKey(PublicKey):
    __slots__ = ("_der", "_key")
    key_type = KeyType.RSA

    def __init__(self, key: rsa.RSAPublicKey) -> None:
        _check_size(key.key_size)
        self._key = key
        self._der = key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        super().__init__(self._der)

    @classmethod
    def from_bytes(cls, data: bytes) -> RsaPublicKey:
        with decoding_key("invalid RSA public key DER"):
            key = serialization.load_der_public_key(bytes(data))
            if not isinstance(key, rsa.RSAPublicKey):
                raise InvalidKey(f"RSA public key DER holds a {type(key).__name__}")
            decoded = cls(key)
        return decoded

    def verify(self, data: bytes, signature: bytes) -> bool:
        try:
            self._key.verify(signature, data, _PAD, _SHA256)
        except (_BadSignature, ValueError, TypeError):
            return False
        return True

    def to_bytes(self) -> bytes:
        return self._der

    def to_cryptography(self) -> rsa.RSAPublicKey:
        return self._key


class RsaPrivateKey(PrivateKey):
    __slots__ = ("_key", "_public")
    key_type = KeyType.RSA

    def __init__(self, key: rsa.RSAPrivateKey) -> None:
        _check_size(key.key_size)
        self._key = key
        self._public = RsaPublicKey(key.public_key())

    @classmethod
    def generate(cls, bits: int = 2048) -> RsaPrivateKey:
        if not MIN_RSA_GENERATE_BITS <= bits <= MAX_RSA_BITS:
            raise ValueError(
                f"refusing to generate a {bits}-bit RSA key "
                f"({MIN_RSA_GENERATE_BITS}..{MAX_RSA_BITS} allowed)"
            )
        return cls(rsa.generate_private_key(public_exponent=65537, key_size=bits))

    @classmethod
    def from_bytes(cls, data: bytes) -> RsaPrivateKey:
        with decoding_key("invalid RSA private key DER"):
            key = serialization.load_der_private_key(bytes(data), password=None)
            if not isinstance(key, rsa.RSAPrivateKey):
                raise InvalidKey(f"RSA private key DER holds a {type(key).__name__}")
            decoded = cls(key)
        return decoded

    @property
    def public_key(self) -> RsaPublicKey:
        return self._public

    def sign(self, data: bytes) -> bytes:
        return self._key.sign(data, _PAD, _SHA256)

    def to_bytes(self) -> bytes:
        return self._key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )

    def to_cryptography(self) -> rsa.RSAPrivateKey:
        return self._key
