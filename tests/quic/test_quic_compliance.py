"""The muxer compliance suite over QUIC streams (real UDP sockets on loopback).

QUIC brings its own muxing: the suite's two sessions are the two ends of one QUIC
connection made by the transport, not a muxer layered on a channel pair.
"""

from __future__ import annotations

import pytest
from p2pkit_quic import QuicTransport

from p2pkit.testing.muxer_suite import MuxerSuite

from .conftest import quic_pair


class TestQuicMuxerSuite(MuxerSuite):
    large_transfer_size = 16 * 1024 * 1024

    @pytest.fixture
    def muxer_pair(self, transports):
        async def make():
            server: QuicTransport = transports()
            client: QuicTransport = transports()
            conn, accepted = await quic_pair(server, client)
            return conn.muxed, accepted.muxed

        return make
