"""The libp2p TLS certificate: generation and verification (libp2p/specs ``tls/tls.md``).

A peer proves its libp2p identity inside TLS without signing the certificate with its
host key (the host key may be of a type X.509 does not know, e.g. secp256k1).  Instead
the certificate is self-signed by a throwaway P-256 key and carries one extension,
OID ``1.3.6.1.4.1.53594.1.1``, whose value is the DER encoding of::

    SignedKey ::= SEQUENCE {
        publicKey OCTET STRING,   -- libp2p protobuf PublicKey of the host identity
        signature OCTET STRING    -- host key's signature over
    }                             -- "libp2p-tls-handshake:" + DER SubjectPublicKeyInfo

Everything here is pure (no sockets, no clock unless ``now`` is omitted), so the rules
can be tested certificate by certificate.

It lives in the core because two plugins need it and no plugin imports another: the
TLS security protocol (``p2pkit-tls``) and QUIC, whose handshake is TLS 1.3 with the
same certificate (``p2pkit-quic``).  :mod:`p2pkit.crypto` does not import this module,
so plugin discovery loads no X.509 code; it is imported when a handshake first needs it.
"""

from __future__ import annotations

import dataclasses
import datetime
import secrets
import warnings

from cryptography import x509
from cryptography.exceptions import InvalidSignature as _CryptoInvalidSignature
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509.oid import ExtensionOID, NameOID

from p2pkit.crypto import PrivateKey, PublicKey, public_key_from_protobuf
from p2pkit.errors import HandshakeError, InvalidKey, InvalidSignature

__all__ = [
    "CERTIFICATE_LIFETIME",
    "EXTENSION_OID",
    "SIGNATURE_PREFIX",
    "CertificateError",
    "CertificateExpired",
    "CertificateNotYetValid",
    "ExtensionSignatureInvalid",
    "HostCertificate",
    "InvalidCertificate",
    "MissingExtension",
    "TooManyCertificates",
    "UnknownCriticalExtension",
    "decode_signed_key",
    "encode_signed_key",
    "generate_certificate",
    "verify_certificate",
    "verify_certificate_chain",
]

EXTENSION_OID = x509.ObjectIdentifier("1.3.6.1.4.1.53594.1.1")
SIGNATURE_PREFIX = b"libp2p-tls-handshake:"
CERTIFICATE_LIFETIME = datetime.timedelta(days=100 * 365)
"""Validity of our certificates (go-libp2p and js-libp2p use ~100 years too)."""
_BACKDATE = datetime.timedelta(hours=1)
"""NotBefore = now - 1 h so that a peer whose clock is slightly behind accepts us."""

# Standard extensions whose meaning we (and every X.509 library) understand: a peer may
# mark them critical.  Any *other* critical extension must make us reject the certificate.
_UNDERSTOOD_EXTENSIONS = frozenset(
    {
        EXTENSION_OID,
        ExtensionOID.BASIC_CONSTRAINTS,
        ExtensionOID.KEY_USAGE,
        ExtensionOID.EXTENDED_KEY_USAGE,
        ExtensionOID.SUBJECT_ALTERNATIVE_NAME,
        ExtensionOID.SUBJECT_KEY_IDENTIFIER,
        ExtensionOID.AUTHORITY_KEY_IDENTIFIER,
    }
)


# -- errors ----------------------------------------------------------------------------


class CertificateError(HandshakeError):
    """The peer's certificate breaks a rule of the libp2p TLS spec."""


class InvalidCertificate(CertificateError):
    """Undecodable certificate or extension, bad self-signature, bad identity key."""


class TooManyCertificates(CertificateError):
    """The peer sent a chain of more (or fewer) than exactly one certificate."""


class CertificateExpired(CertificateError):
    """Now is after the certificate's NotAfter."""


class CertificateNotYetValid(CertificateError):
    """Now is before the certificate's NotBefore."""


class MissingExtension(CertificateError):
    """The libp2p public key extension is absent."""


class UnknownCriticalExtension(CertificateError):
    """The certificate carries a critical extension we do not understand."""


class ExtensionSignatureInvalid(CertificateError, InvalidSignature):
    """The host key's signature over the certificate key does not verify."""


# -- SignedKey DER ------------------------------------------------------------------------


def _der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def _der_tlv(tag: int, value: bytes) -> bytes:
    return bytes([tag]) + _der_length(len(value)) + value


def encode_signed_key(public_key: bytes, signature: bytes) -> bytes:
    """DER ``SignedKey ::= SEQUENCE { publicKey OCTET STRING, signature OCTET STRING }``."""
    return _der_tlv(0x30, _der_tlv(0x04, public_key) + _der_tlv(0x04, signature))


def _read_tlv(data: bytes, pos: int, tag: int, what: str) -> tuple[bytes, int]:
    """Strict DER: the expected tag, a minimal definite length, the value inside ``data``."""
    if pos >= len(data) or data[pos] != tag:
        raise InvalidCertificate(f"SignedKey: expected {what}")
    pos += 1
    if pos >= len(data):
        raise InvalidCertificate("SignedKey: truncated length")
    first = data[pos]
    pos += 1
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        # 0x80 is BER's indefinite length (not DER); > 4 length bytes is absurd here.
        if count == 0 or count > 4 or pos + count > len(data):
            raise InvalidCertificate("SignedKey: bad length")
        raw = data[pos : pos + count]
        pos += count
        length = int.from_bytes(raw, "big")
        if raw[0] == 0 or length < 0x80:
            raise InvalidCertificate("SignedKey: non-minimal length encoding")
    end = pos + length
    if end > len(data):
        raise InvalidCertificate("SignedKey: truncated value")
    return data[pos:end], end


def decode_signed_key(data: bytes) -> tuple[bytes, bytes]:
    """Parse the extension value; returns ``(public_key_protobuf, signature)``.

    Strict on purpose: exactly one SEQUENCE of exactly two OCTET STRINGs and nothing
    after it.  (go-libp2p may append an optional third field, a "network cookie" for
    private networks, which changes the signed prefix: such peers are on another network
    and are rejected here with a clear message.)
    """
    body, end = _read_tlv(data, 0, 0x30, "SEQUENCE")
    if end != len(data):
        raise InvalidCertificate("SignedKey: trailing bytes after the SEQUENCE")
    public_key, pos = _read_tlv(body, 0, 0x04, "OCTET STRING publicKey")
    signature, pos = _read_tlv(body, pos, 0x04, "OCTET STRING signature")
    if pos != len(body):
        raise InvalidCertificate(
            "SignedKey: unexpected extra field (a private-network cookie is not supported)"
        )
    return public_key, signature


# -- generation -----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class HostCertificate:
    """Our certificate and its private key (P-256, unrelated to the host identity key)."""

    certificate: x509.Certificate
    private_key: ec.EllipticCurvePrivateKey

    @property
    def der(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.DER)

    @property
    def not_after(self) -> datetime.datetime:
        return self.certificate.not_valid_after_utc

    def expires_within(
        self, margin: datetime.timedelta, now: datetime.datetime | None = None
    ) -> bool:
        """True when the certificate is expired or will be within ``margin``."""
        return (now or _utcnow()) + margin >= self.not_after


def _utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _spki(key: object) -> bytes:
    public_bytes = getattr(key, "public_bytes", None)
    if public_bytes is None:
        raise InvalidCertificate("certificate key cannot be serialised")
    der: bytes = public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return der


def generate_certificate(
    identity: PrivateKey,
    *,
    now: datetime.datetime | None = None,
    lifetime: datetime.timedelta = CERTIFICATE_LIFETIME,
) -> HostCertificate:
    """A fresh self-signed certificate binding a new P-256 key to ``identity``.

    The libp2p extension is the *first* extension and is marked critical: js-libp2p
    only looks at the first extension of the peer's certificate.
    """
    now = now or _utcnow()
    cert_key = ec.generate_private_key(ec.SECP256R1())
    signature = identity.sign(SIGNATURE_PREFIX + _spki(cert_key.public_key()))
    value = encode_signed_key(identity.public_key.to_protobuf(), signature)
    # Subject = issuer (self-signed, RFC 5280 wants a non-empty issuer): a random serial
    # number attribute, as go-libp2p does; it carries no identity information.
    name = x509.Name([x509.NameAttribute(NameOID.SERIAL_NUMBER, str(secrets.randbits(62)))])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(cert_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + lifetime)
        .add_extension(x509.UnrecognizedExtension(EXTENSION_OID, value), critical=True)
        .sign(cert_key, hashes.SHA256())
    )
    return HostCertificate(certificate, cert_key)


# -- verification ---------------------------------------------------------------------------


def verify_certificate_chain(
    chain: list[bytes], *, now: datetime.datetime | None = None
) -> PublicKey:
    """Check the rules on the peer's whole chain: exactly one certificate, then
    :func:`verify_certificate` on it."""
    if len(chain) != 1:
        raise TooManyCertificates(f"expected exactly one certificate, got {len(chain)}")
    return verify_certificate(chain[0], now=now)


def verify_certificate(der: bytes, *, now: datetime.datetime | None = None) -> PublicKey:
    """Verify one peer certificate by the libp2p rules; return the peer's identity key.

    Checks, in order: decodable, within NotBefore..NotAfter, no unknown critical
    extension, libp2p extension present exactly once, valid self-signature, decodable
    identity key, valid identity signature over the certificate's key.  Raises only
    :class:`CertificateError` subclasses, whatever the input.
    """
    try:
        return _verify_certificate(der, now)
    except CertificateError:
        raise
    except Exception as exc:  # the X.509 parser on hostile input: any failure is "invalid"
        raise InvalidCertificate(f"invalid certificate: {exc!r}") from exc


def _verify_certificate(der: bytes, now: datetime.datetime | None) -> PublicKey:
    try:
        with warnings.catch_warnings():
            # cryptography only warns (for now) about RFC 5280 violations such as a
            # negative serial number; go-libp2p rejects those certificates: so do we.
            warnings.simplefilter("error", CryptographyDeprecationWarning)
            cert = x509.load_der_x509_certificate(der)
    except (ValueError, CryptographyDeprecationWarning) as exc:
        raise InvalidCertificate(f"undecodable certificate: {exc}") from exc
    now = now or _utcnow()
    if now < cert.not_valid_before_utc:
        raise CertificateNotYetValid(f"certificate not valid before {cert.not_valid_before_utc}")
    if now > cert.not_valid_after_utc:
        raise CertificateExpired(f"certificate expired at {cert.not_valid_after_utc}")

    try:
        extensions = list(cert.extensions)
    except (ValueError, x509.DuplicateExtension) as exc:
        raise InvalidCertificate(f"bad certificate extensions: {exc}") from exc
    value: bytes | None = None
    for ext in extensions:
        if ext.critical and ext.oid not in _UNDERSTOOD_EXTENSIONS:
            raise UnknownCriticalExtension(f"unknown critical extension {ext.oid.dotted_string}")
        if ext.oid == EXTENSION_OID:
            if not isinstance(ext.value, x509.UnrecognizedExtension):  # pragma: no cover
                raise InvalidCertificate("libp2p extension parsed as a known extension")
            value = ext.value.value
    if value is None:
        raise MissingExtension("certificate lacks the libp2p public key extension")

    try:
        cert_spki = _spki(cert.public_key())
        cert.verify_directly_issued_by(cert)
    except (ValueError, TypeError, UnsupportedAlgorithm, _CryptoInvalidSignature) as exc:
        raise InvalidCertificate(f"certificate key or self-signature invalid: {exc!r}") from exc

    key_bytes, signature = decode_signed_key(value)
    try:
        identity = public_key_from_protobuf(key_bytes)
    except InvalidKey as exc:
        raise InvalidCertificate(f"bad identity key in libp2p extension: {exc}") from exc
    if not identity.verify(SIGNATURE_PREFIX + cert_spki, signature):
        raise ExtensionSignatureInvalid("libp2p extension signature does not verify")
    return identity
