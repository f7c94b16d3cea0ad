"""p2pkit-tls: the libp2p TLS 1.3 security protocol (``/tls/1.0.0``) for p2pkit.

Every public name is imported on first use (PEP 562 ``__getattr__``), so that
importing the package, or its entry-point module :mod:`p2pkit_tls.plugin`, loads no
implementation module (no cipher, no OpenSSL, no asyncio shell).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from p2pkit.lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "PROTOCOL_ID": "p2pkit_tls._ids",
    "EXTENSION_OID": "p2pkit.crypto.tls_certificate",
    "CertificateError": "p2pkit.crypto.tls_certificate",
    "CertificateExpired": "p2pkit.crypto.tls_certificate",
    "CertificateNotYetValid": "p2pkit.crypto.tls_certificate",
    "ExtensionSignatureInvalid": "p2pkit.crypto.tls_certificate",
    "HostCertificate": "p2pkit.crypto.tls_certificate",
    "InvalidCertificate": "p2pkit.crypto.tls_certificate",
    "MissingExtension": "p2pkit.crypto.tls_certificate",
    "TooManyCertificates": "p2pkit.crypto.tls_certificate",
    "UnknownCriticalExtension": "p2pkit.crypto.tls_certificate",
    "generate_certificate": "p2pkit.crypto.tls_certificate",
    "verify_certificate": "p2pkit.crypto.tls_certificate",
    "verify_certificate_chain": "p2pkit.crypto.tls_certificate",
    "TlsConnection": "p2pkit_tls.connection",
    "ALPN_LIBP2P": "p2pkit_tls.context",
    "TlsIdentity": "p2pkit_tls.context",
    "TlsProtocolError": "p2pkit_tls.handshake",
    "TlsSession": "p2pkit_tls.handshake",
    "TlsOptions": "p2pkit_tls.options",
    "TlsSecurity": "p2pkit_tls.protocol",
}

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

if TYPE_CHECKING:
    from p2pkit.crypto.tls_certificate import (
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
    from p2pkit_tls._ids import PROTOCOL_ID
    from p2pkit_tls.connection import TlsConnection
    from p2pkit_tls.context import (
        ALPN_LIBP2P,
        TlsIdentity,
    )
    from p2pkit_tls.handshake import (
        TlsProtocolError,
        TlsSession,
    )
    from p2pkit_tls.options import TlsOptions
    from p2pkit_tls.protocol import TlsSecurity


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
