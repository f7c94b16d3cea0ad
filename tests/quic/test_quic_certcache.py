"""The verified-certificate memory of p2pkit-quic (``p2pkit_quic.certcache``): a peer's
certificate is verified in full once, a bad one never remembered, and the validity
window still checked on every use."""

from __future__ import annotations

import datetime

import pytest

from p2pkit.crypto.ed25519 import Ed25519PrivateKey
from p2pkit.crypto.tls_certificate import (
    CertificateExpired,
    ExtensionSignatureInvalid,
    TooManyCertificates,
    generate_certificate,
)
from p2pkit_quic import certcache
from p2pkit_tls.testing import custom_certificate


@pytest.fixture(autouse=True)
def _empty_cache():
    certcache.clear()
    yield
    certcache.clear()


def _counting(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    full = certcache.verify_certificate_chain

    def counted(chain, *, now=None):
        calls.append(1)
        return full(chain, now=now)

    monkeypatch.setattr(certcache, "verify_certificate_chain", counted)
    return calls


def test_a_certificate_is_verified_once(monkeypatch):
    calls = _counting(monkeypatch)
    identity = Ed25519PrivateKey.generate()
    der = generate_certificate(identity).der
    first = certcache.verify_peer_chain([der])
    second = certcache.verify_peer_chain([der])
    assert first == second == identity.public_key
    assert len(calls) == 1


def test_a_bad_certificate_is_never_remembered(monkeypatch):
    calls = _counting(monkeypatch)
    der = custom_certificate(Ed25519PrivateKey.generate(), tamper_signature=True).der
    for _ in range(2):
        with pytest.raises(ExtensionSignatureInvalid):
            certcache.verify_peer_chain([der])
    assert len(calls) == 2


def test_validity_window_is_checked_on_every_use():
    certificate = generate_certificate(Ed25519PrivateKey.generate())
    der = certificate.der
    certcache.verify_peer_chain([der])
    later = certificate.not_after + datetime.timedelta(seconds=1)
    with pytest.raises(CertificateExpired):
        certcache.verify_peer_chain([der], now=later)


def test_chains_of_two_are_refused_even_when_each_was_seen():
    der = generate_certificate(Ed25519PrivateKey.generate()).der
    certcache.verify_peer_chain([der])
    with pytest.raises(TooManyCertificates):
        certcache.verify_peer_chain([der, der])


def test_bounded():
    for _ in range(certcache.MAX_ENTRIES + 5):
        certcache.verify_peer_chain([generate_certificate(Ed25519PrivateKey.generate()).der])
    assert len(certcache._verified) == certcache.MAX_ENTRIES
