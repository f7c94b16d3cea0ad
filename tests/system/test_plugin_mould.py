"""The plugin mould: lazy entry points, transport priority, the memory hook, the
default-enable rule and install hints (core README, "Writing a plugin")."""

from __future__ import annotations

import dataclasses
import logging
import subprocess
import sys
from typing import Any

import pytest
from multiaddr import Multiaddr

from p2pkit.abc import ConnectionHandler as Handler
from p2pkit.abc import Listener, RawConnection, Transport
from p2pkit.config import HostBuilder, load_config
from p2pkit.errors import AddressError, ConfigError
from p2pkit.plugins import PluginSpec
from p2pkit.plugins import select as select_mod
from p2pkit.plugins.registry import PluginRegistry
from p2pkit.plugins.select import choose_transport
from p2pkit.protocols.ping import PROTOCOL_ID as PING
from p2pkit.protocols.ping import ping

#: Modules that listing plugins must not import: ciphers, OpenSSL, asyncio shells.
HEAVY = [
    "OpenSSL",
    "noise",
    "cryptography.x509",
    "p2pkit_noise.security",
    "p2pkit_noise.handshake",
    "p2pkit_noise.connection",
    "p2pkit_tls.protocol",
    "p2pkit_tls.connection",
    "p2pkit_tls.certificate",
    "p2pkit.crypto.tls_certificate",
    "p2pkit_tcp.transport",
    "p2pkit_tcp.connection",
    "aioquic",
    "p2pkit_quic.machine",
    "p2pkit_quic.endpoint",
    "p2pkit_quic.session",
    "p2pkit_quic.transport",
    "p2pkit_yamux.shell",
    "p2pkit_yamux.session",
    "p2pkit_mplex.shell",
    "p2pkit_mplex.session",
]


def _run(code: str) -> None:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr


def test_discovering_all_plugins_imports_no_implementation() -> None:
    _run(
        "import sys\n"
        "from p2pkit.plugins.registry import default_registry\n"
        "specs = list(default_registry().all_specs())\n"
        "assert {'tcp', 'quic', 'noise', 'tls', 'yamux', 'mplex'} <= {s.name for s in specs}\n"
        "assert not default_registry().broken\n"
        "import p2pkit_tls, p2pkit_noise, p2pkit_yamux, p2pkit_mplex, p2pkit_tcp, p2pkit_quic\n"
        "import p2pkit_quic.plugin\n"
        "import p2pkit_tls.plugin, p2pkit_yamux.plugin\n"
        f"loaded = sorted(m for m in {HEAVY!r} if m in sys.modules)\n"
        "assert not loaded, loaded\n"
    )


def test_noise_yamux_host_imports_no_tls_or_mplex() -> None:
    _run(
        "import sys\n"
        "from p2pkit.config import HostBuilder\n"
        "host = HostBuilder().transport('tcp').security('noise').muxer('yamux').build()\n"
        "bad = [m for m in ('OpenSSL', 'p2pkit_tls.protocol', 'p2pkit_tls.connection',\n"
        "       'p2pkit_mplex.shell', 'p2pkit_mplex.session') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )


def test_offered_protocols_are_imported_when_a_connection_negotiates_them() -> None:
    """A default host offers every installed security protocol and muxer; building it
    imports none of their implementations, and a Noise + Yamux connection imports those
    two only (p2pkit.deferred)."""
    _run(
        "import asyncio, sys\n"
        "from p2pkit.config import HostBuilder\n"
        "from p2pkit.protocols.ping import PROTOCOL_ID as PING, ping\n"
        f"HEAVY = {HEAVY!r}\n"
        "a = HostBuilder().listen('/ip4/127.0.0.1/tcp/0').build()\n"
        "b = HostBuilder().build()\n"
        # The enabled transports' classes are built with the host (their thin modules);
        # aioquic and websockets wait for the first QUIC or WebSocket listen or dial.
        "thin = ('p2pkit_tcp', 'p2pkit_quic.transport', 'p2pkit_websocket.transport')\n"
        "lazy = [*HEAVY, 'aioquic', 'websockets']\n"
        "loaded = [m for m in lazy if m in sys.modules and not m.startswith(thin)]\n"
        "assert not loaded, loaded\n"
        "async def main():\n"
        "    async with a, b:\n"
        "        addr = a.addrs_with_peer_id[0]\n"
        "        stream = await asyncio.wait_for(b.new_stream(addr, [PING]), 20)\n"
        "        await asyncio.wait_for(ping(stream, 1), 20)\n"
        "        conn = b.connections()[0]\n"
        "        return conn.security_protocol, conn.muxer_protocol\n"
        "sec, mux = asyncio.run(main())\n"
        "assert (sec, mux) == ('/noise', '/yamux/1.0.0'), (sec, mux)\n"
        "assert 'p2pkit_noise.handshake' in sys.modules and 'p2pkit_yamux.shell' in sys.modules\n"
        "bad = [m for m in ('OpenSSL', 'cryptography.x509', 'p2pkit_tls.protocol',\n"
        "       'p2pkit_mplex.shell', 'p2pkit_mplex.session', 'aioquic') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )


def test_lazy_package_attributes_resolve() -> None:
    import p2pkit_mplex
    import p2pkit_noise
    import p2pkit_tls
    import p2pkit_yamux

    assert p2pkit_noise.PROTOCOL_ID == "/noise" and p2pkit_tls.PROTOCOL_ID == "/tls/1.0.0"
    assert p2pkit_yamux.YamuxMuxer.__module__ == "p2pkit_yamux.shell"
    assert p2pkit_mplex.PROTOCOL_ID == "/mplex/6.7.0"
    for pkg in (p2pkit_mplex, p2pkit_noise, p2pkit_tls, p2pkit_yamux):
        assert all(hasattr(pkg, name) for name in pkg.__all__)
    with pytest.raises(AttributeError):
        _ = p2pkit_tls.nothing_here  # type: ignore[attr-defined]


# -- transport priority ---------------------------------------------------------------


class GreedyTransport(Transport):
    """A third-party transport that claims every address (and must never be used here)."""

    name = "greedy"

    def __init__(self) -> None:
        self.used = 0

    def can_dial(self, addr: Multiaddr) -> bool:
        return True

    def can_listen(self, addr: Multiaddr) -> bool:
        return True

    async def dial(self, addr: Multiaddr, *, timeout: float | None = None) -> RawConnection:
        self.used += 1
        raise AddressError("greedy cannot really dial")

    async def listen(self, addr: Multiaddr, handler: Handler) -> Listener:
        self.used += 1
        raise AddressError("greedy cannot really listen")


def _greedy_registry() -> tuple[PluginRegistry, list[GreedyTransport]]:
    built: list[GreedyTransport] = []

    def create(components: Any, options: Any) -> GreedyTransport:
        built.append(GreedyTransport())
        return built[-1]

    reg = PluginRegistry()
    reg.add(PluginSpec(kind="transport", name="greedy", factory=create))  # priority 0
    return reg, built


async def test_greedy_third_party_transport_does_not_shadow_tcp(
    caplog: pytest.LogCaptureFixture,
) -> None:
    reg, built = _greedy_registry()
    # Named first by the user: transports are still ranked by priority.
    cfg = load_config({"transports": ["greedy", "tcp"], "security": ["plaintext"]}, registry=reg)
    assert [p.spec.name for p in cfg.transports] == ["tcp", "greedy"]
    select_mod._warned.clear()
    hosts = []
    with caplog.at_level(logging.WARNING, logger="p2pkit.plugins.select"):
        for _ in range(2):
            b = HostBuilder(reg).security("plaintext").listen("/ip4/127.0.0.1/tcp/0")
            hosts.append(await b.build().start())  # transports: None = all installed
        try:
            a, b_ = hosts
            await a.connect(b_.addrs_with_peer_id[0])
            rtts = await ping(await a.new_stream(b_.peer_id, [PING]), count=2)
            assert len(rtts) == 2
        finally:
            for h in hosts:
                await h.stop()
    assert len(built) == 2 and all(g.used == 0 for g in built)
    warnings = [r for r in caplog.records if "all claim" in r.getMessage()]
    assert warnings and "'tcp'" in warnings[0].getMessage()
    # Once per address shape: two listens and a dial of /ip4/tcp warned once.
    assert len(warnings) == 1


def test_choose_transport_no_claimant_hints() -> None:
    greedy_spec = PluginSpec(kind="transport", name="x", factory=lambda c, o: None)
    tcp_spec = dataclasses.replace(greedy_spec, name="tcp", provides=("tcp",))
    addr = Multiaddr("/ip4/127.0.0.1/tcp/1")
    with pytest.raises(AddressError, match="pip install p2pkit-tcp"):
        choose_transport([], addr, listen=False)
    with pytest.raises(AddressError, match="enable the installed transport 'tcp'"):
        choose_transport([], addr, listen=False, installed=[greedy_spec, tcp_spec])


def test_overlap_warnings_are_bounded(caplog: pytest.LogCaptureFixture) -> None:
    select_mod._warned.clear()
    claimants = [GreedyTransport(), GreedyTransport()]
    with caplog.at_level(logging.WARNING, logger="p2pkit.plugins.select"):
        for port in range(1, 4):  # one shape
            choose_transport(claimants, Multiaddr(f"/ip4/127.0.0.1/tcp/{port}"), listen=True)
        for i in range(select_mod.MAX_WARNED_SHAPES + 10):  # many shapes
            addr = Multiaddr("/ip4/127.0.0.1" + "/tcp/1" * (i % 3 + 1) + f"/udp/{i + 1}")
            choose_transport(claimants, addr, listen=True)
    assert len(select_mod._warned) <= select_mod.MAX_WARNED_SHAPES
    assert len([r for r in caplog.records if "/ip4/tcp " in r.getMessage()]) == 1


# -- memory hook ----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class BufferedOptions:
    receive_buffer: int = 1 << 30


def _buffered_limit(options: BufferedOptions, limit: int) -> BufferedOptions:
    if limit < 1024:
        raise ValueError("needs at least 1 KiB")
    return dataclasses.replace(options, receive_buffer=min(options.receive_buffer, limit))


def test_third_party_muxer_memory_hook() -> None:
    reg = PluginRegistry()
    base = PluginSpec(kind="muxer", name="thirdmux", protocol_id="/third/1", factory=lambda c, o: 0)
    reg.add(
        dataclasses.replace(base, options=BufferedOptions, apply_memory_limit=_buffered_limit),
        dataclasses.replace(base, name="plainmux", protocol_id="/plain/1"),
    )
    table: dict[str, Any] = {
        "security": ["plaintext"],
        "muxers": ["thirdmux", "yamux", "mplex"],
        "limits": {"max_muxer_memory_per_conn": 64 << 20},
    }
    cfg = load_config(table, registry=reg)
    opts = {p.spec.name: p.options for p in cfg.muxers}
    assert opts["thirdmux"].receive_buffer == 64 << 20
    assert opts["yamux"].max_session_receive_buffer == 64 << 20
    assert opts["mplex"].max_streams * opts["mplex"].max_stream_buffer <= 64 << 20
    with pytest.raises(ConfigError, match="thirdmux: needs at least 1 KiB"):
        load_config({**table, "limits": {"max_muxer_memory_per_conn": 512}}, registry=reg)
    no_hook = {**table, "muxers": ["plainmux"]}
    assert load_config(no_hook, registry=reg).muxers[0].spec.name == "plainmux"  # warns only


# -- stream hook ----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class CreditOptions:
    max_streams: int = 100


def _credit_limit(options: CreditOptions, limit: int) -> CreditOptions:
    if limit < 2:
        raise ValueError("needs 2 streams")
    return dataclasses.replace(options, max_streams=min(options.max_streams, limit))


def test_third_party_transport_stream_hook() -> None:
    """limits.max_inbound_streams_per_conn lowers (never raises) the stream credit of a
    transport that declares the hook (QUIC among the installed ones); one without it is
    left alone (the swarm's reset bounds it)."""
    reg = PluginRegistry()
    base = PluginSpec(kind="transport", name="credit", factory=lambda c, o: 0, provides=("x",))
    reg.add(
        dataclasses.replace(base, options=CreditOptions, apply_stream_limit=_credit_limit),
        dataclasses.replace(base, name="plain", options=CreditOptions),
    )
    table: dict[str, Any] = {
        "transports": ["credit", "plain", "quic", "tcp"],
        "limits": {"max_inbound_streams_per_conn": 32},
    }
    opts = {p.spec.name: p.options for p in load_config(table, registry=reg).transports}
    assert opts["credit"].max_streams == 32 and opts["quic"].max_streams == 32
    assert opts["plain"].max_streams == 100  # no hook: untouched
    high = {**table, "limits": {"max_inbound_streams_per_conn": 1000}}
    opts = {p.spec.name: p.options for p in load_config(high, registry=reg).transports}
    assert opts["credit"].max_streams == 100 and opts["quic"].max_streams == 256  # not raised
    with pytest.raises(ConfigError, match="transport credit: needs 2 streams"):
        load_config({**table, "limits": {"max_inbound_streams_per_conn": 1}}, registry=reg)


# -- default-enable rule --------------------------------------------------------------


def test_default_enable_rule_is_priority_order_for_every_kind() -> None:
    reg = PluginRegistry()
    sec = PluginSpec(kind="security", name="a-third", protocol_id="/t/1", factory=lambda c, o: 0)
    reg.add(sec, dataclasses.replace(sec, name="z-first", protocol_id="/z/1", priority=1000))
    cfg = load_config({}, registry=reg)
    assert [p.spec.name for p in cfg.security] == ["z-first", "noise", "tls", "a-third"]
    assert [p.spec.name for p in cfg.muxers] == ["yamux", "mplex"]
    assert cfg.transports[0].spec.name == "tcp"  # then any third-party ones
    assert cfg.peerstore is not None and cfg.peerstore.spec.name == "memory"
    assert cfg.connection_manager is not None and cfg.connection_manager.spec.name == "default"
    assert cfg.gater is None  # the allow/deny gater is asked for by name
    assert "plaintext" not in reg.defaults("security")


def test_import_p2pkit_loads_nothing_else() -> None:
    _run(
        "import sys, p2pkit\n"
        "assert [m for m in sys.modules if m.startswith('p2pkit')] == ['p2pkit']\n"
        "assert p2pkit.HostBuilder.__module__ == 'p2pkit.builder'\n"
    )
