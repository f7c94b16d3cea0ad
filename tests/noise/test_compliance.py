"""Noise runs the shared security compliance suite (p2pkit.testing.security_suite)."""

from __future__ import annotations

import pytest

from p2pkit.crypto import PrivateKey
from p2pkit.testing.security_suite import SecurityFactory, SecuritySuite
from p2pkit_noise import NoiseOptions, NoiseSecurity


class TestNoiseCompliance(SecuritySuite):
    @pytest.fixture
    def make_security(self) -> SecurityFactory:
        def make(private_key: PrivateKey, *, handshake_timeout: float = 10.0) -> NoiseSecurity:
            return NoiseSecurity(private_key, NoiseOptions(handshake_timeout=handshake_timeout))

        return make
