"""The libp2p TLS certificate: generation and every verification rule."""

from __future__ import annotations

import datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from p2pkit.crypto import PrivateKey, generate_private_key
from p2pkit.crypto.tls_certificate import (
    EXTENSION_OID,
    SIGNATURE_PREFIX,
    CertificateExpired,
    CertificateNotYetValid,
    ExtensionSignatureInvalid,
    InvalidCertificate,
    MissingExtension,
    TooManyCertificates,
    UnknownCriticalExtension,
    decode_signed_key,
    encode_signed_key,
    generate_certificate,
    verify_certificate,
    verify_certificate_chain,
)
from p2pkit.errors import HandshakeError, InvalidSignature

KEY_TYPES = ["ed25519", "secp256k1", "ecdsa", "rsa"]
NOW = datetime.datetime.now(datetime.UTC)


def _spki(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def build_cert(
    identity: PrivateKey,
    *,
    oid: x509.ObjectIdentifier = EXTENSION_OID,
    critical: bool = True,
    not_before: datetime.datetime | None = None,
    not_after: datetime.datetime | None = None,
    extra: list[tuple[x509.ExtensionType, bool]] | None = None,
    signature: bytes | None = None,
    signer: ec.EllipticCurvePrivateKey | None = None,
    value: bytes | None = None,
) -> bytes:
    """A certificate like ours, with one thing changed per test."""
    key = ec.generate_private_key(ec.SECP256R1())
    sig = signature if signature is not None else identity.sign(SIGNATURE_PREFIX + _spki(key))
    ext_value = (
        value if value is not None else encode_signed_key(identity.public_key.to_protobuf(), sig)
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(x509.Name([]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or NOW - datetime.timedelta(hours=1))
        .not_valid_after(not_after or NOW + datetime.timedelta(days=1))
        .add_extension(x509.UnrecognizedExtension(oid, ext_value), critical=critical)
    )
    for ext, crit in extra or []:
        builder = builder.add_extension(ext, critical=crit)
    cert = builder.sign(signer or key, hashes.SHA256())
    return cert.public_bytes(serialization.Encoding.DER)


@pytest.fixture(scope="module")
def ed_key() -> PrivateKey:
    return generate_private_key("ed25519")


@pytest.mark.parametrize("key_type", KEY_TYPES)
def test_generate_and_verify_every_key_type(key_type: str) -> None:
    identity = generate_private_key(key_type)
    hc = generate_certificate(identity, now=NOW)
    assert verify_certificate(hc.der) == identity.public_key
    cert = hc.certificate
    # js-libp2p reads only the first extension: ours must be first, and critical.
    first = next(iter(cert.extensions))
    assert first.oid == EXTENSION_OID and first.critical
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)
    assert cert.public_key().curve.name == "secp256r1"  # type: ignore[union-attr]
    assert cert.not_valid_before_utc <= NOW - datetime.timedelta(minutes=59)
    assert cert.not_valid_after_utc >= NOW + datetime.timedelta(days=99 * 365)
    assert cert.issuer == cert.subject


@pytest.mark.parametrize("key_type", KEY_TYPES)
def test_foreign_built_certificate_verifies(key_type: str) -> None:
    # Empty subject/issuer like js-libp2p's, built independently of generate_certificate.
    identity = generate_private_key(key_type)
    assert verify_certificate(build_cert(identity)) == identity.public_key


def test_non_critical_extension_accepted(ed_key: PrivateKey) -> None:
    # go-libp2p does not mark the extension critical.
    assert verify_certificate(build_cert(ed_key, critical=False)) == ed_key.public_key


def test_tampered_signature(ed_key: PrivateKey) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    sig = bytearray(ed_key.sign(SIGNATURE_PREFIX + _spki(key)))
    sig[0] ^= 1
    with pytest.raises(ExtensionSignatureInvalid) as info:
        verify_certificate(build_cert(ed_key, signature=bytes(sig)))
    assert isinstance(info.value, InvalidSignature)
    assert isinstance(info.value, HandshakeError)


def test_signature_over_another_key(ed_key: PrivateKey) -> None:
    other = ec.generate_private_key(ec.SECP256R1())
    sig = ed_key.sign(SIGNATURE_PREFIX + _spki(other))
    with pytest.raises(ExtensionSignatureInvalid):
        verify_certificate(build_cert(ed_key, signature=sig))


def test_extension_key_does_not_match_signer(ed_key: PrivateKey) -> None:
    other = generate_private_key("ed25519")
    key = ec.generate_private_key(ec.SECP256R1())
    value = encode_signed_key(
        other.public_key.to_protobuf(), ed_key.sign(SIGNATURE_PREFIX + _spki(key))
    )
    with pytest.raises(ExtensionSignatureInvalid):
        verify_certificate(build_cert(ed_key, value=value))


def test_wrong_oid(ed_key: PrivateKey) -> None:
    wrong = x509.ObjectIdentifier("1.3.6.1.4.1.53594.1.2")
    with pytest.raises(MissingExtension):
        verify_certificate(build_cert(ed_key, oid=wrong, critical=False))
    # A wrong OID marked critical is an unknown critical extension.
    with pytest.raises(UnknownCriticalExtension):
        verify_certificate(build_cert(ed_key, oid=wrong, critical=True))


def test_unknown_critical_extension(ed_key: PrivateKey) -> None:
    unknown = x509.UnrecognizedExtension(x509.ObjectIdentifier("1.2.3.4.5"), b"\x05\x00")
    with pytest.raises(UnknownCriticalExtension):
        verify_certificate(build_cert(ed_key, extra=[(unknown, True)]))
    # The same extension non-critical must be ignored.
    assert verify_certificate(build_cert(ed_key, extra=[(unknown, False)])) == ed_key.public_key
    # A critical standard extension is understood.
    bc = x509.BasicConstraints(ca=False, path_length=None)
    assert verify_certificate(build_cert(ed_key, extra=[(bc, True)])) == ed_key.public_key


def test_expired_and_not_yet_valid(ed_key: PrivateKey) -> None:
    expired = build_cert(
        ed_key,
        not_before=NOW - datetime.timedelta(days=2),
        not_after=NOW - datetime.timedelta(seconds=5),
    )
    with pytest.raises(CertificateExpired):
        verify_certificate(expired)
    future = build_cert(
        ed_key,
        not_before=NOW + datetime.timedelta(hours=1),
        not_after=NOW + datetime.timedelta(days=2),
    )
    with pytest.raises(CertificateNotYetValid):
        verify_certificate(future)
    # ... and the clock is an input: the same certificate is valid tomorrow.
    assert verify_certificate(future, now=NOW + datetime.timedelta(days=1)) == ed_key.public_key


def test_bad_self_signature(ed_key: PrivateKey) -> None:
    der = build_cert(ed_key, signer=ec.generate_private_key(ec.SECP256R1()))
    with pytest.raises(InvalidCertificate):
        verify_certificate(der)


def test_garbage(ed_key: PrivateKey) -> None:
    with pytest.raises(InvalidCertificate):
        verify_certificate(b"\x30\x03\x02\x01\x00")
    with pytest.raises(InvalidCertificate):
        verify_certificate(build_cert(ed_key, value=b"\x04\x00"))
    bad_key = encode_signed_key(b"\x08\x09\x12\x00", b"sig")  # key type 9 does not exist
    with pytest.raises(InvalidCertificate):
        verify_certificate(build_cert(ed_key, value=bad_key))


def test_chain_of_two(ed_key: PrivateKey) -> None:
    one = build_cert(ed_key)
    assert verify_certificate_chain([one]) == ed_key.public_key
    with pytest.raises(TooManyCertificates):
        verify_certificate_chain([one, build_cert(ed_key)])
    with pytest.raises(TooManyCertificates):
        verify_certificate_chain([])


# -- SignedKey DER ------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 127, 128, 255, 256, 70000])
def test_signed_key_roundtrip(size: int) -> None:
    pk, sig = bytes(range(256)) * (size // 256) + bytes(size % 256), b"s" * 64
    assert decode_signed_key(encode_signed_key(pk, sig)) == (pk, sig)


def test_signed_key_known_bytes() -> None:
    assert encode_signed_key(b"\x01", b"\x02\x03") == bytes.fromhex(
        "3007040101040202 03".replace(" ", "")
    )


@pytest.mark.parametrize(
    "data",
    [
        b"",
        bytes.fromhex("310704010104020203"),  # not a SEQUENCE
        bytes.fromhex("30070401010402020300"),  # trailing byte
        bytes.fromhex("300804010104020203"),  # truncated
        bytes.fromhex("3080040101040202030000"),  # indefinite length
        bytes.fromhex("30810704010104020203"),  # non-minimal length
        bytes.fromhex("300703010104020203"),  # BIT STRING, not OCTET STRING
        bytes.fromhex("300a04010104020203040100"),  # a third field (go's network cookie)
        bytes.fromhex("3003040101"),  # one field only
    ],
)
def test_signed_key_strict(data: bytes) -> None:
    with pytest.raises(InvalidCertificate):
        decode_signed_key(data)
