"""NoiseHandshakePayload encoding (byte vectors) and the static-key signature."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey as CryptoEd25519,
)
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from p2pkit.crypto import PrivateKey, private_key_from_cryptography
from p2pkit.errors import InvalidSignature, UnsupportedKeyType
from p2pkit.peer import PeerId
from p2pkit_noise import HandshakePayload, InvalidHandshakePayload, NoiseExtensions
from p2pkit_noise.payload import (
    MAX_LIST_ENTRIES,
    SIGNATURE_PREFIX,
    make_payload,
    verify_payload,
)

YAMUX = "/yamux/1.0.0"
MPLEX = "/mplex/6.7.0"


def test_prefix_is_the_spec_string() -> None:
    assert SIGNATURE_PREFIX == b"noise-libp2p-static-key:"


def test_encode_byte_vector_with_muxers() -> None:
    p = HandshakePayload(b"K", b"SS", NoiseExtensions(stream_muxers=(YAMUX, MPLEX)))
    ext = b"\x12\x0c" + YAMUX.encode() + b"\x12\x0c" + MPLEX.encode()
    assert p.encode() == b"\x0a\x01K" + b"\x12\x02SS" + b"\x22" + bytes([len(ext)]) + ext


def test_empty_extensions_are_still_sent() -> None:
    # js-libp2p and go-libp2p always put field 4, even empty: "22 00".
    assert HandshakePayload(b"K", b"S", NoiseExtensions()).encode() == b"\x0a\x01K\x12\x01S\x22\x00"


def test_no_extensions_field_when_none() -> None:
    assert HandshakePayload(b"K", b"S", None).encode() == b"\x0a\x01K\x12\x01S"


def test_certhashes_are_field_1_of_extensions() -> None:
    ext = NoiseExtensions(webtransport_certhashes=(b"\x12\x20" + bytes(32),), stream_muxers=("m",))
    assert ext.encode() == b"\x0a\x22\x12\x20" + bytes(32) + b"\x12\x01m"
    assert NoiseExtensions.decode(ext.encode()) == ext


def test_decode_roundtrip_and_unknown_fields_skipped() -> None:
    p = HandshakePayload(b"key", b"sig", NoiseExtensions(stream_muxers=(YAMUX,)))
    # Field 3 (retired "data"), a varint field 9 and a fixed32 field 10: all skipped.
    extra = b"\x1a\x03abc" + b"\x48\x05" + b"\x55\x01\x02\x03\x04"
    assert HandshakePayload.decode(p.encode() + extra) == p
    assert HandshakePayload.decode(b"\x0a\x01K\x12\x01S") == HandshakePayload(b"K", b"S", None)


@pytest.mark.parametrize(
    "data",
    [
        b"",  # nothing
        b"\x12\x01S",  # no key
        b"\x0a\x01K",  # no signature
        b"\x0a\x05K",  # truncated length-delimited field
        b"\x08\x01\x12\x01S",  # identity_key with varint wire type
        b"\x0a\x01K\x12\x01S\x20\x01",  # extensions with varint wire type
        b"\x0a\x01K\x12\x01S\x22\x02\x12\x01",  # truncated inside extensions
        b"\x0a\x01K\x12\x01S\x22\x03\x12\x01\xff",  # muxer id not UTF-8
        b"\x0b",  # group wire type
        b"\x0a\x01K\x12\x01S\x22\x02\x10\x01",  # muxer with varint wire type
    ],
)
def test_malformed_payloads_raise_typed_error(data: bytes) -> None:
    with pytest.raises(InvalidHandshakePayload):
        HandshakePayload.decode(data)


def test_too_many_muxers_rejected() -> None:
    ext = NoiseExtensions(stream_muxers=tuple(f"/m/{i}" for i in range(MAX_LIST_ENTRIES + 1)))
    with pytest.raises(InvalidHandshakePayload):
        NoiseExtensions.decode(ext.encode())
    ok = NoiseExtensions(stream_muxers=tuple(f"/m/{i}" for i in range(MAX_LIST_ENTRIES)))
    assert NoiseExtensions.decode(ok.encode()) == ok


def test_oversized_extension_entries_rejected() -> None:
    multihash = b"\x12\x20" + bytes(32)  # a sha2-256 certificate hash
    ok = NoiseExtensions(webtransport_certhashes=(multihash,), stream_muxers=("/yamux/1.0.0",))
    assert NoiseExtensions.decode(ok.encode()) == ok
    for ext in (
        NoiseExtensions(webtransport_certhashes=(bytes(1025),)),
        NoiseExtensions(stream_muxers=("/" + "m" * 1024,)),
    ):
        with pytest.raises(InvalidHandshakePayload, match="too long"):
            NoiseExtensions.decode(ext.encode())


def test_ed25519_vector_against_independent_signing() -> None:
    """Payload bytes for a fixed Ed25519 identity and static key, checked against
    ``cryptography`` directly (Ed25519 signatures are deterministic)."""
    seed = bytes(range(32))
    raw = CryptoEd25519.from_private_bytes(seed)
    key = private_key_from_cryptography(raw)
    static_pub = X25519PrivateKey.from_private_bytes(bytes(range(32, 64))).public_key()
    static = static_pub.public_bytes_raw()
    payload = make_payload(key, static, [YAMUX])
    pub = raw.public_key().public_bytes_raw()
    expected_key = b"\x08\x01\x12\x20" + pub  # PublicKey{Type=Ed25519, Data=pub}
    expected_sig = raw.sign(b"noise-libp2p-static-key:" + static)
    ext = b"\x12\x0c" + YAMUX.encode()
    assert payload.encode() == (
        b"\x0a\x24" + expected_key + b"\x12\x40" + expected_sig + b"\x22\x0e" + ext
    )
    got_key, peer = verify_payload(HandshakePayload.decode(payload.encode()), static)
    assert got_key == key.public_key
    assert peer == PeerId.from_public_key(key.public_key)


def test_sign_and_verify_every_key_type(key_type: str, identity: Callable[..., PrivateKey]) -> None:
    key = identity(key_type)
    static = X25519PrivateKey.generate().public_key().public_bytes_raw()
    payload = HandshakePayload.decode(make_payload(key, static, None).encode())
    assert payload.extensions == NoiseExtensions()
    got, peer = verify_payload(payload, static)
    assert got == key.public_key
    assert peer == PeerId.from_public_key(key.public_key)
    # The signature binds the static key: another static key does not verify.
    other = X25519PrivateKey.generate().public_key().public_bytes_raw()
    with pytest.raises(InvalidSignature):
        verify_payload(payload, other)
    # A corrupted signature does not verify (and does not raise anything untyped).
    sig = bytearray(payload.identity_sig)
    sig[len(sig) // 2] ^= 1
    with pytest.raises(InvalidSignature):
        verify_payload(HandshakePayload(payload.identity_key, bytes(sig)), static)
    with pytest.raises(InvalidSignature):
        verify_payload(HandshakePayload(payload.identity_key, b"\x00"), static)


def test_signature_from_another_identity_rejected(identity: Callable[..., PrivateKey]) -> None:
    static = X25519PrivateKey.generate().public_key().public_bytes_raw()
    a = make_payload(identity("ed25519", 0), static, None)
    b = make_payload(identity("ed25519", 1), static, None)
    with pytest.raises(InvalidSignature):
        verify_payload(HandshakePayload(a.identity_key, b.identity_sig), static)


def test_unknown_key_type_rejected() -> None:
    payload = HandshakePayload(b"\x08\x07\x12\x01\x00", b"sig")
    with pytest.raises(InvalidHandshakePayload) as info:
        verify_payload(payload, bytes(32))
    assert isinstance(info.value.__cause__, UnsupportedKeyType)


def test_garbage_key_rejected() -> None:
    with pytest.raises(InvalidHandshakePayload):
        verify_payload(HandshakePayload(b"\x08\x01\x12\x03abc", b"sig"), bytes(32))
    with pytest.raises(InvalidHandshakePayload):
        verify_payload(HandshakePayload(b"\xff\xff", b"sig"), bytes(32))
