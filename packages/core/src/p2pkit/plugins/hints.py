"""Install hints: the one table of which distribution to ``pip install`` for what.

Data only, in one place: the registry (unknown plugin names), the configuration (a
kind with nothing installed) and transport selection (an address no transport
handles) read it; no other core module names a plugin.  An installed plugin needs no
entry here: its spec carries its package and the address protocols it ``provides``.
"""

from __future__ import annotations

from p2pkit.plugins.spec import PluginKind

#: Distribution providing each plugin name shipped with p2pkit, by (kind, name).
PLUGIN_DISTRIBUTIONS: dict[tuple[PluginKind, str], str] = {
    ("transport", "tcp"): "p2pkit-tcp",
    ("transport", "websocket"): "p2pkit-websocket",
    ("security", "noise"): "p2pkit-noise",
    ("security", "tls"): "p2pkit-tls",
    ("muxer", "yamux"): "p2pkit-yamux",
    ("muxer", "mplex"): "p2pkit-mplex",
}

#: Distribution providing a transport for a multiaddr protocol (``/tcp/...``).
ADDRESS_DISTRIBUTIONS: dict[str, str] = {
    "tcp": "p2pkit-tcp",
    "ws": "p2pkit-websocket",
    "wss": "p2pkit-websocket",
}

#: What to install when no plugin of a kind is installed at all.
KIND_DISTRIBUTIONS: dict[PluginKind, str] = {
    "transport": "p2pkit-tcp",
    "security": "p2pkit-noise",
    "muxer": "p2pkit-yamux",
}


def distribution_for_plugin(kind: PluginKind, name: str) -> str | None:
    return PLUGIN_DISTRIBUTIONS.get((kind, name))


def distribution_for_address(protocols: list[str]) -> str | None:
    """The distribution whose transport handles an address: the one of its last known
    protocol (the outermost layer: ``/tcp/1/ws`` is WebSocket's, not TCP's)."""
    for proto in reversed(protocols):
        dist = ADDRESS_DISTRIBUTIONS.get(proto)
        if dist is not None:
            return dist
    return None


def distribution_for_kind(kind: PluginKind) -> str | None:
    return KIND_DISTRIBUTIONS.get(kind)
