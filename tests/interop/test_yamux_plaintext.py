"""p2pkit <-> js-libp2p over TCP + plaintext (/plaintext/2.0.0) + yamux, both directions.

No encryption, so a failure here is about multistream-select, the plaintext
exchange or yamux itself (windows, half-close, many streams, large frames).
"""

from __future__ import annotations

import pytest

from .suite import BigTransfers, ExtraOps, InteropSuite

pytestmark = pytest.mark.interop


class TestPlaintextYamux(BigTransfers, ExtraOps, InteropSuite):
    SECURITY = "plaintext"
    MUXER = "yamux"
