"""The shared transport compliance suite over the raw WebSocket connection: /ws on IPv4
and IPv6 loopback, and /tls/ws with a test CA."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from multiaddr import Multiaddr

from p2pkit.abc import Transport
from p2pkit.testing.transport_suite import TransportSuite, default_refused_addrs
from p2pkit_websocket import WsOptions, WsTransport
from tests.tcp.test_tcp_compliance import ipv6_loopback_available
from tests.websocket.certs import CertFiles


def _ws(addr: Multiaddr, suffix: str) -> Multiaddr:
    return Multiaddr(f"{addr}{suffix}")


class WsSuite(TransportSuite):
    @pytest.fixture
    def refused_addrs(self, listen_addr: Multiaddr) -> list[Multiaddr]:
        """The suite's foreign addresses less ``/wss``, which is ours (legacy /tls/ws)."""
        return [a for a in default_refused_addrs(listen_addr) if "/wss" not in str(a)]


class TestWsIPv4(WsSuite):
    @pytest.fixture
    def transport(self) -> Transport:
        return WsTransport()

    @pytest.fixture
    def listen_addr(self) -> Multiaddr:
        return Multiaddr("/ip4/127.0.0.1/tcp/0/ws")

    @pytest.fixture
    def blackhole_addr(self, blackhole_v4: Multiaddr) -> Multiaddr:
        return _ws(blackhole_v4, "/ws")


@pytest.mark.skipif(not ipv6_loopback_available(), reason="IPv6 loopback (::1) is unavailable")
class TestWsIPv6(TestWsIPv4):
    @pytest.fixture
    def listen_addr(self) -> Multiaddr:
        return Multiaddr("/ip6/::1/tcp/0/ws")

    @pytest.fixture
    def blackhole_addr(self, blackhole_v6: Multiaddr) -> Multiaddr:
        return _ws(blackhole_v6, "/ws")


class TestTlsWsIPv4(WsSuite):
    @pytest.fixture
    def new_transport(self, certs: CertFiles) -> Callable[[], Transport]:
        options = WsOptions(
            cert_file=str(certs.cert_file), key_file=str(certs.key_file), ca_file=str(certs.ca_file)
        )
        return lambda: WsTransport(options)

    @pytest.fixture
    def transport(self, new_transport: Callable[[], Transport]) -> Transport:
        return new_transport()

    @pytest.fixture
    def listen_addr(self) -> Multiaddr:
        return Multiaddr("/ip4/127.0.0.1/tcp/0/tls/ws")

    @pytest.fixture
    def blackhole_addr(self, blackhole_v4: Multiaddr) -> Multiaddr:
        return _ws(blackhole_v4, "/tls/ws")
