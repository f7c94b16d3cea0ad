"""Configuration: builder and dict/TOML validate into one model before any socket opens."""

from __future__ import annotations

import dataclasses

import pytest

from p2pkit.builder import HostBuilder
from p2pkit.config import build_options, load_config
from p2pkit.crypto import generate_private_key, write_private_key
from p2pkit.errors import ConfigError
from p2pkit.host import Host
from p2pkit.peer import PeerId
from p2pkit.plugins import PluginSpec


def test_defaults_prefer_noise_and_yamux():
    cfg = load_config({})
    assert cfg.security[0].spec.name == "noise"
    assert "plaintext" not in [p.spec.name for p in cfg.security]
    assert [p.spec.name for p in cfg.muxers][:2] == ["yamux", "mplex"]
    assert "tcp" in [p.spec.name for p in cfg.transports]
    assert cfg.enable_perf is False  # perf spec: never on by default


def test_toml_file(tmp_path):
    key = generate_private_key("ed25519")
    key_file = tmp_path / "id.pem"
    write_private_key(key_file, key)
    path = tmp_path / "p2pkit.toml"
    path.write_text(
        f"""
[p2pkit]
listen = ["/ip4/127.0.0.1/tcp/0"]
transports = ["tcp"]
security = ["plaintext"]
muxers = ["mplex", "yamux"]
identity = "{key_file}"
handshake_timeout = 3

[p2pkit.plugins.yamux]
max_stream_window = 1048576
"""
    )
    cfg = load_config(str(path))
    assert [p.spec.name for p in cfg.muxers] == ["mplex", "yamux"]
    assert cfg.muxers[1].options.max_stream_window == 1048576
    assert cfg.handshake_timeout == 3.0
    host = Host(cfg)
    assert host.peer_id == PeerId.from_public_key(key.public_key)


def test_builder_equals_dict():
    b = (
        HostBuilder()
        .listen("/ip4/127.0.0.1/tcp/0")
        .transport("tcp", nodelay=True)
        .security("plaintext")
        .muxer("yamux", max_stream_window=4 << 20)
        .muxer("mplex")
        .config()
    )
    d = load_config(
        {
            "listen": ["/ip4/127.0.0.1/tcp/0"],
            "transports": ["tcp"],
            "security": ["plaintext"],
            "muxers": ["yamux", "mplex"],
            "plugins": {"tcp": {"nodelay": True}, "yamux": {"max_stream_window": 4 << 20}},
        }
    )
    assert [p.spec.name for p in b.muxers] == [p.spec.name for p in d.muxers]
    assert b.muxers[0].options == d.muxers[0].options
    assert b.transports[0].options == d.transports[0].options


def test_unknown_plugin_names_the_package():
    with pytest.raises(ConfigError, match=r"no security plugin named 'foo'"):
        load_config({"security": ["foo"]})
    with pytest.raises(ConfigError, match="installed: "):
        load_config({"muxers": ["spdy"]})


def test_bad_values_rejected():
    with pytest.raises(ConfigError, match="unknown configuration key"):
        load_config({"listen_addrs": []})
    with pytest.raises(ConfigError, match="unknown option"):
        load_config({"plugins": {"yamux": {"windw": 1}}})
    with pytest.raises(ConfigError, match="expected"):
        load_config({"plugins": {"yamux": {"max_stream_window": "big"}}})
    with pytest.raises(ConfigError, match="invalid listen multiaddr"):
        load_config({"listen": ["/ip4/1.2.3/tcp/1"]})
    with pytest.raises(ConfigError, match="positive"):
        load_config({"handshake_timeout": -1})
    with pytest.raises(ConfigError, match="duplicate"):
        load_config({"muxers": ["yamux", "yamux"]})
    with pytest.raises(ConfigError, match="not valid TOML"):
        import tempfile

        with tempfile.NamedTemporaryFile("w", suffix=".toml") as fh:
            fh.write("[p2pkit\n")
            fh.flush()
            load_config(fh.name)


def test_build_options_types():
    @dataclasses.dataclass
    class Opts:
        a: int = 1
        b: float = 1.0
        c: bool = False
        d: list[str] = dataclasses.field(default_factory=list)
        e: str | None = None

    spec = PluginSpec(kind="muxer", name="x", factory=lambda c, o: None, options=Opts)
    o = build_options(spec, {"a": 3, "b": 2, "c": True, "d": ["x"], "e": "y"})
    assert o == Opts(3, 2.0, True, ["x"], "y")
    assert isinstance(o.b, float)
    for bad in ({"a": True}, {"a": 1.5}, {"c": 1}, {"d": "x"}, {"e": 3}):
        with pytest.raises(ConfigError):
            build_options(spec, bad)
