"""Gaters are plugins too: found by name in the registry, built-in or third-party."""

from __future__ import annotations

import pytest

from p2pkit.abc import ConnectionGater
from p2pkit.config import load_config
from p2pkit.crypto import generate_private_key
from p2pkit.errors import ConfigError
from p2pkit.gater import AllowDenyGater
from p2pkit.peer import PeerId
from p2pkit.plugins import PluginSpec
from p2pkit.plugins.registry import PluginRegistry


def test_builtin_gater_by_name():
    peer = PeerId.from_public_key(generate_private_key().public_key)
    cfg = load_config({"gater": {"name": "allow-deny", "deny_peers": [str(peer)]}})
    assert isinstance(cfg.gater, AllowDenyGater)
    assert not cfg.gater.allow_dial_peer(peer)


def test_third_party_gater_plugin():
    class DenyAll(ConnectionGater):
        def allow_dial_peer(self, peer):  # type: ignore[no-untyped-def]
            return False

    reg = PluginRegistry()
    reg.add(PluginSpec(kind="connection_gater", name="deny-all", factory=lambda c, o: DenyAll()))
    cfg = load_config({"gater": {"name": "deny-all"}}, registry=reg)
    assert isinstance(cfg.gater, DenyAll)
    with pytest.raises(ConfigError, match="no connection_gater plugin named 'nope'"):
        load_config({"gater": {"name": "nope"}}, registry=reg)
