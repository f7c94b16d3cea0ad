"""The shipped transport compliance suite over the example /unix plugin."""

from __future__ import annotations

import pytest
from multiaddr import Multiaddr

from p2pkit.abc import Transport
from p2pkit.errors import AddressError, DialError
from p2pkit.testing.transport_suite import TransportSuite
from p2pkit_unix import UnixTransport, socket_path


class TestUnix(TransportSuite):
    signals_reset = False  # a Unix domain socket has no RST: the peer reads EOF

    @pytest.fixture
    def transport(self) -> Transport:
        return UnixTransport()

    @pytest.fixture
    def listen_addr(self, sock_dir: str) -> Multiaddr:
        return Multiaddr(f"/unix{sock_dir}/node.sock")


def test_claims_only_unix_addresses() -> None:
    t = UnixTransport()
    assert t.can_dial(Multiaddr("/unix/tmp/x.sock"))
    assert not t.can_dial(Multiaddr("/ip4/127.0.0.1/tcp/1"))
    with pytest.raises(AddressError):
        socket_path(Multiaddr("/ip4/127.0.0.1/tcp/1"))


def test_p2p_suffix_is_not_part_of_the_path() -> None:
    peer = "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N"
    assert socket_path(Multiaddr(f"/unix/tmp/x.sock/p2p/{peer}")) == "/tmp/x.sock"


async def test_dial_missing_socket_file_is_a_dial_error(sock_dir: str) -> None:
    with pytest.raises(DialError):
        await UnixTransport().dial(Multiaddr(f"/unix{sock_dir}/nobody.sock"), timeout=5)
