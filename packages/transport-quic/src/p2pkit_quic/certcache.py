"""Peer certificates already verified, so a reconnecting peer is not verified again.

A libp2p host makes its certificate once (``QuicTransport.certificate``) and presents
it on every connection; verifying it by the libp2p rules costs two signature checks
(the certificate's P-256 self-signature and the identity key's signature in the
extension) plus X.509 parsing, on both sides of every handshake, on the path of the
first byte.  The result depends only on the certificate's bytes and the clock, so the
identity key is kept per DER encoding (only after a full verification succeeded) with
the validity window, which is checked again on every hit.  Bounded (least recently
used out), so a peer presenting ever new certificates only costs what it did before.
"""

from __future__ import annotations

import datetime
from collections import OrderedDict
from typing import TYPE_CHECKING

from cryptography import x509

from p2pkit.crypto.tls_certificate import verify_certificate_chain

if TYPE_CHECKING:
    from p2pkit.crypto import PublicKey

MAX_ENTRIES = 256

_Entry = tuple["PublicKey", datetime.datetime, datetime.datetime]
_verified: OrderedDict[bytes, _Entry] = OrderedDict()


def verify_peer_chain(chain: list[bytes], *, now: datetime.datetime | None = None) -> PublicKey:
    """:func:`~p2pkit.crypto.tls_certificate.verify_certificate_chain`, remembered.

    Raises what it raises (a :class:`~p2pkit.crypto.tls_certificate.CertificateError`);
    a remembered certificate outside its validity window is verified afresh, which
    raises the right error.
    """
    if len(chain) == 1:
        entry = _verified.get(chain[0])
        if entry is not None:
            key, not_before, not_after = entry
            when = now or datetime.datetime.now(datetime.UTC)
            if not_before <= when <= not_after:
                _verified.move_to_end(chain[0])
                return key
            del _verified[chain[0]]
    key = verify_certificate_chain(chain, now=now)
    cert = x509.load_der_x509_certificate(chain[0])
    _verified[chain[0]] = (key, cert.not_valid_before_utc, cert.not_valid_after_utc)
    if len(_verified) > MAX_ENTRIES:
        _verified.popitem(last=False)
    return key


def clear() -> None:
    """Forget every certificate (tests)."""
    _verified.clear()
