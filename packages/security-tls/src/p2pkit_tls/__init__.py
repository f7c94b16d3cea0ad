"""p2pkit-tls: the libp2p TLS 1.3 security protocol (``/tls/1.0.0``) for p2pkit."""

from __future__ import annotations

from p2pkit_tls.certificate import (
    EXTENSION_OID,
    CertificateError,
    CertificateExpired,
    CertificateNotYetValid,
    ExtensionSignatureInvalid,
    HostCertificate,
    InvalidCertificate,
    MissingExtension,
    TooManyCertificates,
    UnknownCriticalExtension,
    generate_certificate,
    verify_certificate,
    verify_certificate_chain,
)
from p2pkit_tls.connection import TlsConnection
from p2pkit_tls.context import ALPN_LIBP2P, TlsIdentity
from p2pkit_tls.handshake import TlsProtocolError, TlsSession
from p2pkit_tls.options import TlsOptions
from p2pkit_tls.protocol import PROTOCOL_ID, TlsSecurity

__all__ = [
    "ALPN_LIBP2P",
    "EXTENSION_OID",
    "PROTOCOL_ID",
    "CertificateError",
    "CertificateExpired",
    "CertificateNotYetValid",
    "ExtensionSignatureInvalid",
    "HostCertificate",
    "InvalidCertificate",
    "MissingExtension",
    "TlsConnection",
    "TlsIdentity",
    "TlsOptions",
    "TlsProtocolError",
    "TlsSecurity",
    "TlsSession",
    "TooManyCertificates",
    "UnknownCriticalExtension",
    "generate_certificate",
    "verify_certificate",
    "verify_certificate_chain",
]
