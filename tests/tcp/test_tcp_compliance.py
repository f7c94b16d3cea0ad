"""The shared transport compliance suite, run over TCP on IPv4 and IPv6 loopback."""

from __future__ import annotations

import socket

import pytest
from multiaddr import Multiaddr

from p2pkit.abc import Transport
from p2pkit.testing.transport_suite import TransportSuite
from p2pkit_tcp import TcpTransport


def ipv6_loopback_available() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


class TestTcpIPv4(TransportSuite):
    @pytest.fixture
    def transport(self) -> Transport:
        return TcpTransport()

    @pytest.fixture
    def listen_addr(self) -> Multiaddr:
        return Multiaddr("/ip4/127.0.0.1/tcp/0")

    @pytest.fixture
    def blackhole_addr(self, blackhole_v4: Multiaddr) -> Multiaddr:
        return blackhole_v4


@pytest.mark.skipif(not ipv6_loopback_available(), reason="IPv6 loopback (::1) is unavailable")
class TestTcpIPv6(TransportSuite):
    @pytest.fixture
    def transport(self) -> Transport:
        return TcpTransport()

    @pytest.fixture
    def listen_addr(self) -> Multiaddr:
        return Multiaddr("/ip6/::1/tcp/0")

    @pytest.fixture
    def blackhole_addr(self, blackhole_v6: Multiaddr) -> Multiaddr:
        return blackhole_v6
