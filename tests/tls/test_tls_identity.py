"""TlsIdentity: one certificate per host, cached, renewed before it expires."""

from __future__ import annotations

import datetime

from p2pkit.crypto import generate_private_key
from p2pkit_tls.context import TlsIdentity

NOW = datetime.datetime.now(datetime.UTC)


def test_identity_caches_and_renews() -> None:
    ed_key = generate_private_key("ed25519")
    ident = TlsIdentity(ed_key, lifetime=datetime.timedelta(hours=3))
    first = ident.context(NOW)
    cert = ident.certificate
    assert ident.context(NOW + datetime.timedelta(minutes=30)) is first
    assert ident.certificate is cert
    # Within an hour of NotAfter the certificate is renewed.
    renewed = ident.context(NOW + datetime.timedelta(hours=2, minutes=30))
    assert renewed is not first and ident.certificate is not cert
    assert ident.certificate.not_after > cert.not_after
