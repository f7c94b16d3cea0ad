"""Conversions between libp2p key encodings, ``cryptography`` objects, PEM and files.

This is the "I/O boundary" of the peer-ids spec: everything that turns bytes from a
peer or a disk into a key object (and back) goes through here, and every failure is
an :class:`~p2pkit.errors.InvalidKey` (or its subclass ``UnsupportedKeyType``).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Literal

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from p2pkit.crypto.ecdsa import EcdsaPrivateKey, EcdsaPublicKey
from p2pkit.crypto.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from p2pkit.crypto.keys import KeyType, PrivateKey, PublicKey, decoding_key
from p2pkit.crypto.rsa import RsaPrivateKey, RsaPublicKey
from p2pkit.crypto.secp256k1 import Secp256k1PrivateKey, Secp256k1PublicKey
from p2pkit.errors import InvalidKey, ProtocolError, UnsupportedKeyType
from p2pkit.protobuf import WIRE_BYTES, WIRE_VARINT, iter_fields

__all__ = [
    "generate_private_key",
    "load_private_key",
    "parse_key_type",
    "private_key_from_cryptography",
    "private_key_from_protobuf",
    "public_key_from_cryptography",
    "public_key_from_protobuf",
    "read_private_key",
    "write_private_key",
]

_PUBLIC_DECODERS: dict[KeyType, Any] = {
    KeyType.RSA: RsaPublicKey.from_bytes,
    KeyType.Ed25519: Ed25519PublicKey.from_bytes,
    KeyType.Secp256k1: Secp256k1PublicKey.from_bytes,
    KeyType.ECDSA: EcdsaPublicKey.from_bytes,
}
_PRIVATE_DECODERS: dict[KeyType, Any] = {
    KeyType.RSA: RsaPrivateKey.from_bytes,
    KeyType.Ed25519: Ed25519PrivateKey.from_bytes,
    KeyType.Secp256k1: Secp256k1PrivateKey.from_bytes,
    KeyType.ECDSA: EcdsaPrivateKey.from_bytes,
}

# A 8192-bit PKCS#1 private key is ~4.7 KB of DER; anything far beyond is not a key.
_MAX_KEY_MESSAGE = 16 * 1024


def parse_key_type(key_type: KeyType | str | int) -> KeyType:
    """``KeyType`` from an enum, its wire value or a case-insensitive name."""
    if isinstance(key_type, KeyType):
        return key_type
    if isinstance(key_type, str):
        for member in KeyType:
            if member.name.lower() == key_type.strip().lower():
                return member
        raise UnsupportedKeyType(
            f"unknown key type {key_type!r} (expected one of ed25519, secp256k1, ecdsa, rsa)"
        )
    try:
        return KeyType(key_type)
    except ValueError:
        raise UnsupportedKeyType(f"unknown key type value {key_type!r}") from None


def _decode_key_message(data: bytes, what: str) -> tuple[KeyType, bytes]:
    """Parse ``{Type = 1, Data = 2}``; both required, each exactly once.

    Unknown fields are ignored (protobuf semantics); the peer id is always derived from
    our own canonical re-encoding, so they cannot smuggle in an alternate identity.
    """
    if len(data) > _MAX_KEY_MESSAGE:
        raise InvalidKey(f"{what} protobuf too large ({len(data)} bytes)")
    type_value: int | None = None
    key_data: bytes | None = None
    try:
        for field, wire_type, value in iter_fields(data):
            if field == 1:
                if wire_type != WIRE_VARINT or type_value is not None:
                    raise InvalidKey(f"{what}: bad or duplicate Type field")
                assert isinstance(value, int)
                type_value = value
            elif field == 2:
                if wire_type != WIRE_BYTES or key_data is not None:
                    raise InvalidKey(f"{what}: bad or duplicate Data field")
                assert isinstance(value, bytes)
                key_data = value
    except ProtocolError as exc:
        raise InvalidKey(f"{what}: malformed protobuf: {exc}") from exc
    if type_value is None or key_data is None:
        raise InvalidKey(f"{what}: missing required Type or Data field")
    try:
        key_type = KeyType(type_value)
    except ValueError:
        raise UnsupportedKeyType(f"{what}: unknown key type {type_value}") from None
    return key_type, key_data


def public_key_from_protobuf(data: bytes) -> PublicKey:
    """Decode a libp2p ``PublicKey`` protobuf (as sent in Noise/TLS/identify)."""
    with decoding_key("PublicKey"):
        key_type, key_data = _decode_key_message(bytes(data), "PublicKey")
        key: PublicKey = _PUBLIC_DECODERS[key_type](key_data)
    return key


def private_key_from_protobuf(data: bytes) -> PrivateKey:
    """Decode a libp2p ``PrivateKey`` protobuf (the go/js libp2p key file format)."""
    with decoding_key("PrivateKey"):
        key_type, key_data = _decode_key_message(bytes(data), "PrivateKey")
        key: PrivateKey = _PRIVATE_DECODERS[key_type](key_data)
    return key


def _ec_is_secp256k1(curve: ec.EllipticCurve) -> bool:
    return isinstance(curve, ec.SECP256K1)


def public_key_from_cryptography(obj: object) -> PublicKey:
    """Wrap a ``cryptography`` public key (Ed25519, EC secp256k1 / P-256/384/521, RSA)."""
    if isinstance(obj, ed25519.Ed25519PublicKey):
        return Ed25519PublicKey(obj)
    if isinstance(obj, ec.EllipticCurvePublicKey):
        if _ec_is_secp256k1(obj.curve):
            return Secp256k1PublicKey(obj)
        return EcdsaPublicKey(obj)
    if isinstance(obj, rsa.RSAPublicKey):
        return RsaPublicKey(obj)
    raise UnsupportedKeyType(f"unsupported public key object {type(obj).__name__}")


def private_key_from_cryptography(obj: object) -> PrivateKey:
    """Wrap a ``cryptography`` private key (Ed25519, EC secp256k1 / P-256/384/521, RSA)."""
    if isinstance(obj, ed25519.Ed25519PrivateKey):
        return Ed25519PrivateKey(obj)
    if isinstance(obj, ec.EllipticCurvePrivateKey):
        if _ec_is_secp256k1(obj.curve):
            return Secp256k1PrivateKey(obj)
        return EcdsaPrivateKey(obj)
    if isinstance(obj, rsa.RSAPrivateKey):
        return RsaPrivateKey(obj)
    raise UnsupportedKeyType(f"unsupported private key object {type(obj).__name__}")


def generate_private_key(
    key_type: KeyType | str = KeyType.Ed25519, *, bits: int = 2048
) -> PrivateKey:
    """A fresh key; ``bits`` only applies to RSA (2048..8192)."""
    kt = parse_key_type(key_type)
    if kt is KeyType.Ed25519:
        return Ed25519PrivateKey.generate()
    if kt is KeyType.Secp256k1:
        return Secp256k1PrivateKey.generate()
    if kt is KeyType.ECDSA:
        return EcdsaPrivateKey.generate()
    return RsaPrivateKey.generate(bits)


def load_private_key(data: bytes) -> PrivateKey:
    """Load a private key from PEM (PKCS#8, SEC1 or PKCS#1) or a libp2p protobuf."""
    data = bytes(data)
    if data.lstrip().startswith(b"-----BEGIN"):
        try:
            obj = serialization.load_pem_private_key(data, password=None)
        except TypeError as exc:  # encrypted PEM
            raise InvalidKey(f"cannot load PEM private key: {exc}") from exc
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise InvalidKey(f"invalid PEM private key: {exc}") from exc
        with decoding_key("PEM private key"):
            key = private_key_from_cryptography(obj)
        return key
    return private_key_from_protobuf(data)


def read_private_key(path: str | os.PathLike[str]) -> PrivateKey:
    """Read a key file written by :func:`write_private_key` (or by go/js libp2p)."""
    return load_private_key(Path(path).read_bytes())


def write_private_key(
    path: str | os.PathLike[str],
    key: PrivateKey,
    *,
    format: Literal["pem", "protobuf"] = "pem",
) -> None:
    """Write ``key`` with mode 0600, atomically (temp file in the same directory + rename).

    Atomic so that a crash never leaves a truncated identity behind; the temp file is
    created 0600 so the secret is never readable by others, even briefly.
    """
    if format == "pem":
        payload = key.to_pem()
    elif format == "protobuf":
        payload = key.to_protobuf()
    else:
        raise ValueError(f"unknown key file format {format!r} (use 'pem' or 'protobuf')")
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:  # mkstemp creates the file with mode 0600
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
