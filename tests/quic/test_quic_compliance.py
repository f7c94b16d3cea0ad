"""The compliance suites over QUIC (real UDP sockets on loopback).

QUIC brings its own muxing: :class:`~p2pkit.testing.muxed_transport_suite.
MuxedTransportSuite` runs every muxer-suite scenario on the two ends of one QUIC
connection made by the transport, plus the transport scenarios that apply to a
transport that yields muxed connections.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from multiaddr import Multiaddr

from p2pkit.crypto import generate_private_key
from p2pkit.testing.muxed_transport_suite import MuxedTransportSuite
from p2pkit_quic import QuicTransport

from .conftest import LISTEN


class TestQuic(MuxedTransportSuite):
    large_transfer_size = 16 * 1024 * 1024

    @pytest.fixture
    def new_transport(self):
        return lambda: QuicTransport(generate_private_key("ed25519"))

    @pytest.fixture
    def listen_addr(self) -> Multiaddr:
        return Multiaddr(LISTEN)

    @pytest.fixture
    def blackhole_addr(self) -> Iterator[Multiaddr]:
        """A UDP socket that reads nothing: the handshake never gets an answer."""
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink:
            sink.bind(("127.0.0.1", 0))
            yield Multiaddr(f"/ip4/127.0.0.1/udp/{sink.getsockname()[1]}/quic-v1")
