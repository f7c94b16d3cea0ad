"""Test helpers: TLS peers, certificates that break one rule, connected pairs.

Used by p2pkit's own tests and available to anyone testing against p2pkit-tls (for
example to check that their implementation rejects a misbehaving peer).  Not imported by
the package itself.
"""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from p2pkit.abc import RawConnection, SecureConnection
from p2pkit.crypto import PrivateKey, generate_private_key
from p2pkit.crypto.tls_certificate import (
    EXTENSION_OID,
    SIGNATURE_PREFIX,
    HostCertificate,
    encode_signed_key,
)
from p2pkit.peer import PeerId
from p2pkit.testing.memory import channel_pair, tcp_channel_pair
from p2pkit_tls.context import TlsIdentity
from p2pkit_tls.options import TlsOptions
from p2pkit_tls.protocol import TlsSecurity

__all__ = [
    "MPLEX",
    "YAMUX",
    "custom_certificate",
    "handshake",
    "make_pair",
    "new_security",
    "peer_id",
    "security_with",
]

YAMUX = "/yamux/1.0.0"
MPLEX = "/mplex/6.7.0"


def peer_id(key: PrivateKey) -> PeerId:
    return PeerId.from_public_key(key.public_key)


def custom_certificate(
    identity: PrivateKey,
    *,
    oid: x509.ObjectIdentifier = EXTENSION_OID,
    not_before: datetime.datetime | None = None,
    not_after: datetime.datetime | None = None,
    tamper_signature: bool = False,
    extra: Sequence[tuple[x509.ExtensionType, bool]] = (),
) -> HostCertificate:
    """A certificate with one rule broken, usable as a TLS peer's certificate."""
    now = datetime.datetime.now(datetime.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    spki = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    sig = bytearray(identity.sign(SIGNATURE_PREFIX + spki))
    if tamper_signature:
        sig[-1] ^= 0x40
    value = encode_signed_key(identity.public_key.to_protobuf(), bytes(sig))
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(x509.Name([]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or now - datetime.timedelta(hours=1))
        .not_valid_after(not_after or now + datetime.timedelta(days=1))
        .add_extension(x509.UnrecognizedExtension(oid, value), critical=True)
    )
    for ext, critical in extra:
        builder = builder.add_extension(ext, critical=critical)
    return HostCertificate(builder.sign(key, hashes.SHA256()), key)


def security_with(key: PrivateKey, cert: HostCertificate, *, timeout: float = 5.0) -> TlsSecurity:
    """A TlsSecurity presenting ``cert`` (e.g. one from :func:`custom_certificate`)."""
    sec = TlsSecurity(key, TlsOptions(handshake_timeout=timeout))
    sec.identity = TlsIdentity.with_certificate(key, cert)
    return sec


async def make_pair(kind: str) -> tuple[RawConnection, RawConnection]:
    """``"tcp"``: loopback TCP (needs p2pkit-tcp); anything else: in-memory pair."""
    if kind == "tcp":
        return await tcp_channel_pair()
    return channel_pair()


async def handshake(
    client: TlsSecurity,
    server: TlsSecurity,
    a: RawConnection,
    b: RawConnection,
    *,
    expected: PeerId | None = None,
    client_muxers: Sequence[str] = (),
    server_muxers: Sequence[str] = (),
) -> tuple[SecureConnection | BaseException, SecureConnection | BaseException]:
    """Both roles concurrently; returns each side's connection or exception."""
    res = await asyncio.wait_for(
        asyncio.gather(
            client.secure_outbound(a, expected, client_muxers),
            server.secure_inbound(b, server_muxers),
            return_exceptions=True,
        ),
        15.0,
    )
    return res[0], res[1]


def new_security(key_type: str = "ed25519") -> TlsSecurity:
    """A TlsSecurity with a fresh identity key."""
    return TlsSecurity(generate_private_key(key_type))
