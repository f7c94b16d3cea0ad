"""The shared security compliance suite, run against p2pkit-tls."""

from __future__ import annotations

from typing import Any

import pytest

from p2pkit.crypto import PrivateKey
from p2pkit.testing.security_suite import SecuritySuite
from p2pkit_tls import TlsOptions, TlsSecurity


class TestTlsCompliance(SecuritySuite):
    @pytest.fixture
    def make_security(self) -> Any:
        def make(private_key: PrivateKey, *, handshake_timeout: float = 10.0) -> TlsSecurity:
            return TlsSecurity(private_key, TlsOptions(handshake_timeout=handshake_timeout))

        return make
