"""Shared fixtures: one identity key per key type, generated once per session (RSA is slow)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from p2pkit.crypto import PrivateKey, generate_private_key

KEY_TYPES = ["ed25519", "secp256k1", "ecdsa", "rsa"]

_cache: dict[tuple[str, int], PrivateKey] = {}


def _identity(key_type: str = "ed25519", n: int = 0) -> PrivateKey:
    """The n-th cached identity key of ``key_type``."""
    key = _cache.get((key_type, n))
    if key is None:
        key = _cache[(key_type, n)] = generate_private_key(key_type)  # type: ignore[arg-type]
    return key


@pytest.fixture(params=KEY_TYPES)
def key_type(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def identity() -> Callable[..., PrivateKey]:
    """``identity(key_type="ed25519", n=0)``: the n-th cached key of that type."""
    return _identity
