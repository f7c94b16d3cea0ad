"""Hostile key bytes: every decoding entry point raises a typed ``InvalidKey``.

``cryptography`` raises ``UnsupportedAlgorithm`` (not a ``ValueError``) for a DER key
whose algorithm or curve OID it does not know; such a key from a peer used to escape as
an untyped exception.  The mangled OIDs below are the ones found by fuzzing.
"""

from __future__ import annotations

import base64
import logging
import random
from collections.abc import Callable

import pytest
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

from p2pkit.crypto import (
    EcdsaPrivateKey,
    EcdsaPublicKey,
    Ed25519PrivateKey,
    Ed25519PublicKey,
    KeyType,
    RsaPrivateKey,
    RsaPublicKey,
    Secp256k1PrivateKey,
    Secp256k1PublicKey,
    generate_private_key,
    load_private_key,
    private_key_from_protobuf,
    public_key_from_protobuf,
)
from p2pkit.crypto.keys import encode_key_protobuf
from p2pkit.errors import InvalidKey, P2PError, ProtocolError
from p2pkit.peer import PeerId
from p2pkit.protocols.peer_record import make_signed_peer_record, open_signed_peer_record

RSA_OID = bytes.fromhex("2a864886f70d010101")  # rsaEncryption
RSA_OID_MANGLED = bytes.fromhex("2a8648fef70d010101")
P256_OID = bytes.fromhex("2a8648ce3d030107")  # prime256v1
P256_OID_MANGLED = bytes.fromhex("2a8648ce3d0b0107")

_rsa: list[RsaPrivateKey] = []


def rsa_key() -> RsaPrivateKey:
    if not _rsa:
        key = generate_private_key("rsa")
        assert isinstance(key, RsaPrivateKey)
        _rsa.append(key)
    return _rsa[0]


def _mangle(data: bytes, old: bytes, new: bytes) -> bytes:
    assert data.count(old) == 1
    return data.replace(old, new)


def mangled_rsa_spki() -> bytes:
    return _mangle(rsa_key().public_key.to_bytes(), RSA_OID, RSA_OID_MANGLED)


def mangled_ecdsa_spki() -> bytes:
    return _mangle(EcdsaPrivateKey.generate().public_key.to_bytes(), P256_OID, P256_OID_MANGLED)


def mangled_ecdsa_sec1() -> bytes:
    return _mangle(EcdsaPrivateKey.generate().to_bytes(), P256_OID, P256_OID_MANGLED)


def mangled_rsa_pkcs8() -> bytes:
    """RSA private Data is PKCS#1 (no OID) but the DER loader also takes PKCS#8."""
    der = (
        rsa_key()
        .to_cryptography()
        .private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return _mangle(der, RSA_OID, RSA_OID_MANGLED)


def _typed(fn: Callable[[bytes], object], data: bytes) -> InvalidKey:
    with pytest.raises(InvalidKey) as info:
        fn(data)
    return info.value


def test_the_mangled_keys_really_trip_cryptography():
    """Guard against a vacuous test: the raw library call raises an untyped error."""
    for der in (mangled_rsa_spki(), mangled_ecdsa_spki()):
        with pytest.raises(UnsupportedAlgorithm):
            serialization.load_der_public_key(der)
    with pytest.raises(UnsupportedAlgorithm):
        serialization.load_der_private_key(mangled_ecdsa_sec1(), password=None)


@pytest.mark.parametrize("make", [mangled_rsa_spki, mangled_ecdsa_spki])
@pytest.mark.parametrize("decode", [RsaPublicKey.from_bytes, EcdsaPublicKey.from_bytes])
def test_public_der_decoders(make, decode):
    err = _typed(decode, make())
    assert isinstance(err.__cause__, UnsupportedAlgorithm)


@pytest.mark.parametrize("make", [mangled_ecdsa_sec1, mangled_rsa_pkcs8])
@pytest.mark.parametrize("decode", [RsaPrivateKey.from_bytes, EcdsaPrivateKey.from_bytes])
def test_private_der_decoders(make, decode):
    err = _typed(decode, make())
    assert isinstance(err.__cause__, UnsupportedAlgorithm)


@pytest.mark.parametrize(
    ("key_type", "make"),
    [
        (KeyType.RSA, mangled_rsa_spki),
        (KeyType.ECDSA, mangled_ecdsa_spki),
        (KeyType.RSA, mangled_ecdsa_spki),
        (KeyType.ECDSA, mangled_rsa_spki),
    ],
)
def test_public_protobuf(key_type, make):
    message = encode_key_protobuf(key_type, make())
    _typed(public_key_from_protobuf, message)


@pytest.mark.parametrize(
    ("key_type", "make"),
    [(KeyType.ECDSA, mangled_ecdsa_sec1), (KeyType.RSA, mangled_rsa_pkcs8)],
)
def test_private_protobuf_and_key_files(key_type, make):
    message = encode_key_protobuf(key_type, make())
    _typed(private_key_from_protobuf, message)
    _typed(load_private_key, message)
    # The same mangled DER as PEM (the key file format the CLI writes).
    lines = base64.encodebytes(make()).decode().strip()
    for label in ("PRIVATE KEY", "EC PRIVATE KEY", "RSA PRIVATE KEY"):
        text = f"-----BEGIN {label}-----\n{lines}\n-----END {label}-----\n".encode()
        _typed(load_private_key, text)


def test_signed_peer_record_with_mangled_key_is_a_protocol_error():
    """The envelope's key is decoded before its signature: a typed ProtocolError."""
    key = rsa_key()
    peer = PeerId.from_public_key(key.public_key)
    envelope = make_signed_peer_record(key, peer, [], 1)
    bad = _mangle(envelope, RSA_OID, RSA_OID_MANGLED)
    with pytest.raises(ProtocolError) as info:
        open_signed_peer_record(bad)
    assert isinstance(info.value.__cause__, InvalidKey)


_DECODERS: list[tuple[str, Callable[[bytes], object], Callable[[], bytes]]] = [
    ("rsa-public", RsaPublicKey.from_bytes, lambda: rsa_key().public_key.to_bytes()),
    ("rsa-private", RsaPrivateKey.from_bytes, lambda: rsa_key().to_bytes()),
    (
        "ecdsa-public",
        EcdsaPublicKey.from_bytes,
        lambda: EcdsaPrivateKey.generate().public_key.to_bytes(),
    ),
    ("ecdsa-private", EcdsaPrivateKey.from_bytes, lambda: EcdsaPrivateKey.generate().to_bytes()),
    (
        "secp-public",
        Secp256k1PublicKey.from_bytes,
        lambda: Secp256k1PrivateKey.generate().public_key.to_bytes(),
    ),
    (
        "secp-private",
        Secp256k1PrivateKey.from_bytes,
        lambda: Secp256k1PrivateKey.generate().to_bytes(),
    ),
    (
        "ed-public",
        Ed25519PublicKey.from_bytes,
        lambda: Ed25519PrivateKey.generate().public_key.to_bytes(),
    ),
    ("ed-private", Ed25519PrivateKey.from_bytes, lambda: Ed25519PrivateKey.generate().to_bytes()),
]


@pytest.mark.parametrize(("name", "decode", "make"), _DECODERS, ids=[d[0] for d in _DECODERS])
def test_mutated_keys_raise_only_typed_errors(name, decode, make):
    """300 seeded byte mutations per decoder: a key object or an InvalidKey, nothing else."""
    rng = random.Random(f"{name}-11")
    good = make()
    for _ in range(300):
        data = bytearray(good)
        for _ in range(rng.randint(1, 3)):
            op = rng.randrange(3)
            if op == 0 and data:
                data[rng.randrange(len(data))] = rng.randrange(256)
            elif op == 1 and data:
                del data[rng.randrange(len(data)) :]
            else:
                data.insert(rng.randrange(len(data) + 1), rng.randrange(256))
        try:
            decode(bytes(data))
        except P2PError as exc:
            assert isinstance(exc, InvalidKey), repr(exc)


@pytest.mark.parametrize("field", ["public_key", "signed_peer_record"])
async def test_identify_with_mangled_key_is_typed(make_host, caplog, field):
    """Over real hosts: an identify reply whose public key is undecodable is a typed
    ProtocolError; a peer record signed by an undecodable key is ignored (logged with
    its typed reason), as identify ignores every bad record."""
    caplog.set_level(logging.INFO, logger="p2pkit")
    server = await make_host()
    client = await make_host(listen=False)
    service = server.identify
    honest = service.local_info
    key = rsa_key()

    def hostile(conn):
        info = honest(conn)
        if field == "public_key":
            info.public_key = _mangle(key.public_key.to_protobuf(), RSA_OID, RSA_OID_MANGLED)
        else:
            record = make_signed_peer_record(key, server.peer_id, [], 1)
            info.signed_peer_record = _mangle(record, RSA_OID, RSA_OID_MANGLED)
        return info

    service.local_info = hostile
    conn = await client.connect(server.addrs_with_peer_id[0])
    identify = client.identify
    if field == "public_key":
        with pytest.raises(ProtocolError) as info:
            await identify.identify(conn)
        assert isinstance(info.value.__cause__, InvalidKey)
    else:
        await identify.identify(conn)
        assert "ignoring peer record: signed peer record: malformed envelope" in caplog.text
