"""Per-host TLS state: the cached certificate and the OpenSSL context built from it.

Generating a key and a certificate costs a P-256 key generation, a certificate
signature and an identity signature (RSA identities: milliseconds).  js-libp2p pays it
on every connection; we pay it once per host and renew the certificate shortly before
it expires (with the default lifetime of ~100 years, in practice never).

Why pyOpenSSL and not the stdlib ``ssl`` module: libp2p servers MUST require a client
certificate, and that certificate is self-signed by a key nobody knows in advance.
Stdlib ``ssl`` only requests a client certificate with ``CERT_OPTIONAL``/``CERT_REQUIRED``
and then always verifies it against the CA store, failing with "self-signed certificate"
(``VERIFY_X509_PARTIAL_CHAIN`` does not help: the peer's certificate is not in the store,
and ``CERT_NONE`` on a server does not request a certificate at all).  It offers no verify
callback.  pyOpenSSL (maintained by the PyCA, the authors of ``cryptography``, and built
on the same bundled OpenSSL) exposes ``set_verify`` with a callback, so the server can
demand a certificate, accept a self-signed one and apply the libp2p rules itself.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence

from OpenSSL import SSL, crypto

from p2pkit.crypto import PrivateKey
from p2pkit.crypto.tls_certificate import (
    CERTIFICATE_LIFETIME,
    HostCertificate,
    generate_certificate,
)
from p2pkit.errors import HandshakeError

__all__ = ["ALPN_LIBP2P", "TlsIdentity"]

ALPN_LIBP2P = "libp2p"
"""The ALPN token of libp2p TLS; listed last, after the muxer ids (early muxer negotiation)."""
_RENEW_MARGIN = datetime.timedelta(hours=1)


def _select_alpn(conn: SSL.Connection, offered: list[bytes]) -> bytes:
    """Server side ALPN: the first protocol of the *client's* list that we support.

    (js-libp2p and the early-muxer spec pick by the client's order; with the same
    preference order everywhere both rules agree anyway.)
    """
    session = conn.get_app_data()
    supported: Sequence[bytes] = getattr(session, "alpn_protocols", ())
    for proto in offered:
        if proto in supported:
            return proto
    # tls.md: "The server MUST abort the handshake if it doesn't support any of the
    # application protocols offered by the client" (every libp2p client offers
    # "libp2p").  Raised here, pyOpenSSL makes OpenSSL send no_application_protocol
    # and raises this from do_handshake.
    shown = b", ".join(offered[:8]).decode("ascii", "replace")
    raise HandshakeError(f"the client offered no ALPN protocol we speak ({shown})")


def _verify_peer(conn: SSL.Connection, cert: crypto.X509, errno: int, depth: int, ok: int) -> bool:
    """Context-wide verify callback: hands over to the connection's TlsSession.

    Set once on the context (not per connection): pyOpenSSL's per-connection callback
    wrappers form reference cycles, which would keep every connection alive until the
    garbage collector runs.
    """
    session = conn.get_app_data()
    verify = getattr(session, "verify_callback", None)
    return bool(verify(conn, cert, errno, depth, ok)) if verify is not None else False


class TlsIdentity:
    """Holds a host's certificate (renewed before expiry) and its ``SSL.Context``."""

    def __init__(
        self,
        private_key: PrivateKey,
        *,
        lifetime: datetime.timedelta = CERTIFICATE_LIFETIME,
    ) -> None:
        if lifetime <= _RENEW_MARGIN:
            raise ValueError("certificate lifetime must exceed the renewal margin (1 h)")
        self.private_key = private_key
        self.lifetime = lifetime
        self._certificate: HostCertificate | None = None
        self._context: SSL.Context | None = None
        self._pinned = False

    @classmethod
    def with_certificate(cls, private_key: PrivateKey, certificate: HostCertificate) -> TlsIdentity:
        """An identity that always presents ``certificate`` (never renewed).

        For tests (misbehaving peers) and for hosts that manage their certificate
        themselves; ``certificate`` should carry the extension for ``private_key``.
        """
        ident = cls(private_key)
        ident._certificate = certificate
        ident._context = cls._build_context(certificate)
        ident._pinned = True
        return ident

    @property
    def certificate(self) -> HostCertificate:
        """The current certificate (generated on first use, renewed when about to expire)."""
        self.context()
        assert self._certificate is not None
        return self._certificate

    def context(self, now: datetime.datetime | None = None) -> SSL.Context:
        """The ``SSL.Context`` for new connections, client and server alike."""
        cert = self._certificate
        if self._pinned and self._context is not None:
            return self._context
        if cert is None or self._context is None or cert.expires_within(_RENEW_MARGIN, now):
            cert = generate_certificate(self.private_key, now=now, lifetime=self.lifetime)
            self._certificate = cert
            self._context = self._build_context(cert)
        return self._context

    @staticmethod
    def _build_context(cert: HostCertificate) -> SSL.Context:
        ctx = SSL.Context(SSL.TLS_METHOD)
        ctx.set_min_proto_version(SSL.TLS1_3_VERSION)
        ctx.set_max_proto_version(0)  # 0 = highest the library supports (TLS 1.3+)
        ctx.use_certificate(cert.certificate)
        ctx.use_privatekey(cert.private_key)
        ctx.check_privatekey()
        # No resumption: every connection authenticates with a certificate.
        ctx.set_options(SSL.OP_NO_TICKET)
        ctx.set_session_cache_mode(SSL.SESS_CACHE_OFF)
        ctx.set_verify(SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT, _verify_peer)
        ctx.set_alpn_select_callback(_select_alpn)
        return ctx
