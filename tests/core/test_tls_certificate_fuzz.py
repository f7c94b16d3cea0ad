"""Fuzzing the certificate parser: any input gives the identity or a CertificateError."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from p2pkit.crypto import generate_private_key
from p2pkit.crypto.tls_certificate import (
    CertificateError,
    InvalidCertificate,
    decode_signed_key,
    generate_certificate,
    verify_certificate,
)

_IDENTITY = generate_private_key("ed25519")
_VALID = generate_certificate(_IDENTITY).der


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_signed_key_decoder_never_crashes(data: bytes) -> None:
    try:
        pk, sig = decode_signed_key(data)
    except InvalidCertificate:
        return
    assert isinstance(pk, bytes) and isinstance(sig, bytes)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(st.integers(0, len(_VALID) - 1), st.integers(0, 255)), min_size=1, max_size=4
    )
)
def test_mutated_certificate_gives_typed_error(mutations: list[tuple[int, int]]) -> None:
    der = bytearray(_VALID)
    for pos, value in mutations:
        der[pos] = value
    try:
        key = verify_certificate(bytes(der))
    except CertificateError:
        return
    # A mutation that keeps the certificate valid (e.g. in an unchecked field) is fine,
    # but then it must still prove the same identity.
    assert key == _IDENTITY.public_key


@settings(max_examples=100, deadline=None)
@given(st.integers(1, len(_VALID) - 1))
def test_truncated_certificate_gives_typed_error(cut: int) -> None:
    try:
        verify_certificate(_VALID[:cut])
    except CertificateError:
        return
    raise AssertionError("a truncated certificate verified")
