"""Plugins shipped inside the core, registered through the same entry-point path as
third-party ones (``builtin = "p2pkit.builtin_plugins"``)."""

from __future__ import annotations

from typing import Any

from p2pkit.plugins.spec import Components, PluginSpec, hookimpl


def _plaintext(components: Components, options: Any) -> Any:
    from p2pkit.security.plaintext import PlaintextSecurity

    return PlaintextSecurity(components.private_key, options)


def _memory_peerstore(components: Components, options: Any) -> Any:
    from p2pkit.peerstore import MemoryPeerstore

    return MemoryPeerstore()


@hookimpl
def p2pkit_security_protocols() -> list[PluginSpec]:
    from p2pkit.security.plaintext import PROTOCOL_ID, PlaintextOptions

    return [
        PluginSpec(
            kind="security",
            name="plaintext",
            protocol_id=PROTOCOL_ID,
            factory=_plaintext,
            options=PlaintextOptions,
            description="INSECURE /plaintext/2.0.0 (testing only; never a default)",
        )
    ]


@hookimpl
def p2pkit_peerstores() -> list[PluginSpec]:
    return [
        PluginSpec(
            kind="peerstore",
            name="memory",
            factory=_memory_peerstore,
            description="in-memory peerstore (the default)",
        ),
        PluginSpec(
            kind="peerstore",
            name="sqlite",
            factory=_sqlite_peerstore,
            options=_sqlite_options(),
            description="SQLite file peerstore (stdlib sqlite3): peers survive restarts",
        ),
    ]


def _sqlite_options() -> type:
    from p2pkit.peerstore_sqlite import SqlitePeerstoreOptions

    return SqlitePeerstoreOptions


def _sqlite_peerstore(components: Components, options: Any) -> Any:
    from p2pkit.peerstore_sqlite import sqlite_peerstore_factory

    return sqlite_peerstore_factory(components, options)


@hookimpl
def p2pkit_connection_managers() -> list[PluginSpec]:
    from p2pkit.connmgr import ConnManagerOptions, connection_manager_factory

    return [
        PluginSpec(
            kind="connection_manager",
            name="default",
            factory=connection_manager_factory,
            options=ConnManagerOptions,
            description="watermarks, grace/silence periods, tags, protection (go-libp2p style)",
        )
    ]


def _allow_deny_gater(components: Components, options: Any) -> Any:
    from p2pkit.gater import AllowDenyGater

    return AllowDenyGater.from_options(options)


@hookimpl
def p2pkit_connection_gaters() -> list[PluginSpec]:
    from p2pkit.gater import GaterOptions

    return [
        PluginSpec(
            kind="connection_gater",
            name="allow-deny",
            factory=_allow_deny_gater,
            options=GaterOptions,
            description="allow/deny lists of peer ids and CIDR ranges (the built-in gater)",
        )
    ]
