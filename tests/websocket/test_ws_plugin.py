"""The plugin entry, options, addresses, and which transport claims which address."""

from __future__ import annotations

import socket
from importlib.metadata import entry_points

import pytest
from multiaddr import Multiaddr

from p2pkit.errors import AddressError, ConfigError
from p2pkit.plugins.hints import distribution_for_address
from p2pkit.plugins.select import choose_transport
from p2pkit.plugins.spec import Components
from p2pkit_tcp import TcpTransport
from p2pkit_websocket import WsOptions, WsTransport, normalise, parse
from p2pkit_websocket.plugin import p2pkit_transports


def test_plugin_entry_point_and_spec() -> None:
    (ep,) = [e for e in entry_points(group="p2pkit") if e.name == "websocket"]
    assert ep.value == "p2pkit_websocket.plugin"
    (spec,) = p2pkit_transports()
    assert (spec.kind, spec.name, spec.options) == ("transport", "websocket", WsOptions)
    assert spec.priority < 100 and set(spec.provides) == {"ws", "wss"}
    opts = WsOptions(handshake_timeout=3.0)
    transport = spec.factory(Components(private_key=None, peer_id=None), opts)  # type: ignore[arg-type]
    assert isinstance(transport, WsTransport) and transport.options is opts


@pytest.mark.parametrize(
    "kwargs",
    [
        {"handshake_timeout": 0.0},
        {"max_message_size": 10},
        {"max_frame_size": 0},
        {"max_pings_per_second": 0},
        {"cert_file": "a.pem"},  # without key_file
        {"nodelay": True, "close_timeout": -1.0},  # a TCP option, checked too
    ],
)
def test_bad_options_are_config_errors(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        WsOptions(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "tls", "sni", "host", "port", "family"),
    [
        ("/ip4/1.2.3.4/tcp/80/ws", False, None, "1.2.3.4", 80, socket.AF_INET),
        ("/ip6/::1/tcp/80/ws", False, None, "::1", 80, socket.AF_INET6),
        ("/dns/a.example/tcp/443/tls/ws", True, "a.example", "a.example", 443, socket.AF_UNSPEC),
        ("/dns4/example.com/tcp/443/wss", True, "example.com", "example.com", 443, socket.AF_INET),
        ("/ip4/1.2.3.4/tcp/443/tls/sni/x.org/ws", True, "x.org", "1.2.3.4", 443, socket.AF_INET),
        ("/ip4/1.2.3.4/tcp/443/tls/ws", True, None, "1.2.3.4", 443, socket.AF_INET),
        (
            "/ip4/1.2.3.4/tcp/80/ws/p2p/12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA",
            False, None, "1.2.3.4", 80, socket.AF_INET,
        ),
    ],
)  # fmt: skip
def test_parse(text: str, tls: bool, sni: str | None, host: str, port: int, family: int) -> None:
    t = parse(Multiaddr(text))
    assert (t.tls, t.sni, t.tcp.host, t.tcp.port, t.tcp.family) == (tls, sni, host, port, family)


def test_host_header_brackets_ipv6() -> None:
    assert parse(Multiaddr("/ip6/::1/tcp/8/ws")).host_header == "[::1]:8"
    assert parse(Multiaddr("/dns/a.b/tcp/8/tls/ws")).host_header == "a.b:8"


@pytest.mark.parametrize(
    "text",
    [
        "/ip4/1.2.3.4/tcp/80",
        "/ip4/1.2.3.4/udp/80/quic-v1",
        "/ip4/1.2.3.4/tcp/80/tls",
        "/ip4/1.2.3.4/tcp/80/ws/ws",
        "/ip4/1.2.3.4/tcp/80/tls/sni/a.b/wss",
        "/ip4/1.2.3.4/ws",
        "/unix/tmp%2Fx/ws",
    ],
)
def test_not_ours(text: str) -> None:
    with pytest.raises(AddressError):
        parse(Multiaddr(text))
    assert not WsTransport().can_dial(Multiaddr(text))


def test_normalise_legacy_wss() -> None:
    assert str(normalise(Multiaddr("/ip4/1.2.3.4/tcp/443/wss"))) == "/ip4/1.2.3.4/tcp/443/tls/ws"
    p2p = "/p2p/12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"
    assert str(normalise(Multiaddr(f"/dns/a.b/tcp/1/wss{p2p}"))) == f"/dns/a.b/tcp/1/tls/ws{p2p}"
    assert str(normalise(Multiaddr("/ip4/1.2.3.4/tcp/80/ws"))) == "/ip4/1.2.3.4/tcp/80/ws"


def test_tcp_and_ws_claim_their_own_addresses() -> None:
    transports = [TcpTransport(), WsTransport()]  # TCP first: higher priority
    for text, want in [
        ("/ip4/127.0.0.1/tcp/1", "tcp"),
        ("/ip4/127.0.0.1/tcp/1/ws", "websocket"),
        ("/ip4/127.0.0.1/tcp/1/tls/ws", "websocket"),
        ("/dns/x.y/tcp/1/wss", "websocket"),
    ]:
        for listen in (True, False):
            assert choose_transport(transports, Multiaddr(text), listen=listen).name == want


def test_install_hint_names_this_package_for_ws_addresses() -> None:
    assert distribution_for_address(["ip4", "tcp", "ws"]) == "p2pkit-websocket"
    assert distribution_for_address(["dns", "tcp", "tls", "ws"]) == "p2pkit-websocket"
    assert distribution_for_address(["ip4", "tcp"]) == "p2pkit-tcp"
    with pytest.raises(AddressError, match="p2pkit-websocket"):
        choose_transport([TcpTransport()], Multiaddr("/ip4/1.2.3.4/tcp/1/ws"), listen=False)


async def test_tls_listen_without_certificate_is_a_transport_error() -> None:
    from p2pkit.errors import TransportError

    with pytest.raises(TransportError, match="cert_file"):
        await WsTransport().listen(Multiaddr("/ip4/127.0.0.1/tcp/0/tls/ws"), lambda c: None)
