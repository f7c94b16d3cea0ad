"""p2pkit: a libp2p connection stack for Python, built from plugins.

The public names below are importable from ``p2pkit`` directly; they are loaded on first
use so that ``import p2pkit`` stays cheap (the CLI and plugins import submodules).  Not
even :mod:`typing` is imported here (it pulls in ``re`` and ``enum``): type checkers
treat the local ``TYPE_CHECKING`` constant like ``typing.TYPE_CHECKING``.
"""

from __future__ import annotations

import importlib

TYPE_CHECKING = False

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "Host": "p2pkit.host",
    "Connection": "p2pkit.connection",
    "HostBuilder": "p2pkit.builder",
    "HostConfig": "p2pkit.config",
    "load_config": "p2pkit.config",
    "PeerId": "p2pkit.peer",
    "KeyType": "p2pkit.crypto",
    "PrivateKey": "p2pkit.crypto",
    "PublicKey": "p2pkit.crypto",
    "generate_private_key": "p2pkit.crypto",
    "read_private_key": "p2pkit.crypto",
    "write_private_key": "p2pkit.crypto",
    "EventBus": "p2pkit.events",
    "MemoryPeerstore": "p2pkit.peerstore",
    "SqlitePeerstore": "p2pkit.peerstore_sqlite",
    "BasicConnectionManager": "p2pkit.connmgr",
    "ConnManagerOptions": "p2pkit.connmgr",
    "ResourceLimits": "p2pkit.limits",
    "LimitExceeded": "p2pkit.limits",
    "AllowDenyGater": "p2pkit.gater",
    "ConnectionGated": "p2pkit.gater",
    "DialerOptions": "p2pkit.dialer",
    "PluginSpec": "p2pkit.plugins.spec",
    "PluginRegistry": "p2pkit.plugins.registry",
    "hookimpl": "p2pkit.plugins.spec",
    "ChannelBase": "p2pkit.channel",
    "LayeredChannel": "p2pkit.channel",
    "StreamSocketConnection": "p2pkit.stream_socket",
    "StreamSocketOptions": "p2pkit.stream_socket",
    "ServerListener": "p2pkit.stream_socket",
    "dial_stream": "p2pkit.stream_socket",
    "listen_stream": "p2pkit.stream_socket",
}

__all__ = [
    "AllowDenyGater",
    "BasicConnectionManager",
    "ChannelBase",
    "ConnManagerOptions",
    "Connection",
    "ConnectionGated",
    "DialerOptions",
    "EventBus",
    "Host",
    "HostBuilder",
    "HostConfig",
    "KeyType",
    "LayeredChannel",
    "LimitExceeded",
    "MemoryPeerstore",
    "PeerId",
    "PluginRegistry",
    "PluginSpec",
    "PrivateKey",
    "PublicKey",
    "ResourceLimits",
    "ServerListener",
    "SqlitePeerstore",
    "StreamSocketConnection",
    "StreamSocketOptions",
    "__version__",
    "dial_stream",
    "generate_private_key",
    "hookimpl",
    "listen_stream",
    "load_config",
    "read_private_key",
    "write_private_key",
]

if TYPE_CHECKING:
    from typing import Any

    from p2pkit.builder import HostBuilder
    from p2pkit.channel import ChannelBase, LayeredChannel
    from p2pkit.config import HostConfig, load_config
    from p2pkit.connection import Connection
    from p2pkit.connmgr import BasicConnectionManager, ConnManagerOptions
    from p2pkit.crypto import (
        KeyType,
        PrivateKey,
        PublicKey,
        generate_private_key,
        read_private_key,
        write_private_key,
    )
    from p2pkit.dialer import DialerOptions
    from p2pkit.events import EventBus
    from p2pkit.gater import AllowDenyGater, ConnectionGated
    from p2pkit.host import Host
    from p2pkit.limits import LimitExceeded, ResourceLimits
    from p2pkit.peer import PeerId
    from p2pkit.peerstore import MemoryPeerstore
    from p2pkit.peerstore_sqlite import SqlitePeerstore
    from p2pkit.plugins.registry import PluginRegistry
    from p2pkit.plugins.spec import PluginSpec, hookimpl
    from p2pkit.stream_socket import (
        ServerListener,
        StreamSocketConnection,
        StreamSocketOptions,
        dial_stream,
        listen_stream,
    )


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'p2pkit' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
