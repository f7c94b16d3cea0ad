"""The core's insecure /plaintext/2.0.0 runs the shared security compliance suite."""

from __future__ import annotations

import pytest

from p2pkit.security.plaintext import PlaintextOptions, PlaintextSecurity
from p2pkit.testing.security_suite import SecuritySuite


class TestPlaintext(SecuritySuite):
    # Plaintext only claims an identity: it cannot prove key possession.
    authenticates = False
    # Its exchange has no room for a muxer list.
    negotiates_early_muxer = False

    @pytest.fixture
    def make_security(self):  # type: ignore[no-untyped-def]
        def make(private_key, *, handshake_timeout=10.0):  # type: ignore[no-untyped-def]
            return PlaintextSecurity(private_key, PlaintextOptions(handshake_timeout))

        return make
