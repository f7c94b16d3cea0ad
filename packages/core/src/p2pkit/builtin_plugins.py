"""Plugins shipped inside the core, registered through the same entry-point path as
third-party ones (``builtin = "p2pkit.builtin_plugins"``).

Same mould as a plugin package (see the core README, "Writing a plugin"): one
``create_<name>(components, options)`` factory per spec (a plugin package has one
spec and names it ``create``), implementation modules imported inside the factory.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from p2pkit.plugins.spec import Components, PluginSpec, hookimpl

if TYPE_CHECKING:
    from p2pkit.abc import ConnectionGater, ConnectionManager, Peerstore, SecurityProtocol
    from p2pkit.peerstore import MemoryPeerstoreOptions

#: Priority of the built-in default of a single-choice kind (third-party: 0 unless set).
BUILTIN_PRIORITY = 100


def create_plaintext(components: Components, options: Any) -> SecurityProtocol:
    from p2pkit.security.plaintext import PlaintextSecurity

    return PlaintextSecurity(components.private_key, options)


def create_memory_peerstore(components: Components, options: Any) -> Peerstore:
    from p2pkit.peerstore import MemoryPeerstore

    opts: MemoryPeerstoreOptions = options  # validated by the registry's options path
    return MemoryPeerstore(
        max_peers=opts.max_peers,
        max_addrs_per_peer=opts.max_addrs_per_peer,
        max_protocols_per_peer=opts.max_protocols_per_peer,
    )


def create_sqlite_peerstore(components: Components, options: Any) -> Peerstore:
    from p2pkit.peerstore_sqlite import sqlite_peerstore_factory

    return sqlite_peerstore_factory(components, options)


def create_connection_manager(components: Components, options: Any) -> ConnectionManager:
    from p2pkit.connmgr import connection_manager_factory

    return connection_manager_factory(components, options)


def create_allow_deny_gater(components: Components, options: Any) -> ConnectionGater:
    from p2pkit.gater import AllowDenyGater

    return AllowDenyGater.from_options(options)


@hookimpl
def p2pkit_security_protocols() -> list[PluginSpec[SecurityProtocol]]:
    from p2pkit.security.plaintext import PROTOCOL_ID, PlaintextOptions

    return [
        PluginSpec(
            kind="security",
            name="plaintext",
            protocol_id=PROTOCOL_ID,
            factory=create_plaintext,
            options=PlaintextOptions,
            default_enabled=False,
            description="INSECURE /plaintext/2.0.0 (testing only; never a default)",
        )
    ]


@hookimpl
def p2pkit_peerstores() -> list[PluginSpec[Peerstore]]:
    from p2pkit.peerstore import MemoryPeerstoreOptions
    from p2pkit.peerstore_sqlite import SqlitePeerstoreOptions

    return [
        PluginSpec(
            kind="peerstore",
            name="memory",
            factory=create_memory_peerstore,
            options=MemoryPeerstoreOptions,
            priority=BUILTIN_PRIORITY,
            description="in-memory peerstore (the default)",
        ),
        PluginSpec(
            kind="peerstore",
            name="sqlite",
            factory=create_sqlite_peerstore,
            options=SqlitePeerstoreOptions,
            default_enabled=False,  # needs a file path
            description="SQLite file peerstore (stdlib sqlite3): peers survive restarts",
        ),
    ]


@hookimpl
def p2pkit_connection_managers() -> list[PluginSpec[ConnectionManager]]:
    from p2pkit.connmgr import ConnManagerOptions

    return [
        PluginSpec(
            kind="connection_manager",
            name="default",
            factory=create_connection_manager,
            options=ConnManagerOptions,
            priority=BUILTIN_PRIORITY,
            description="watermarks, grace/silence periods, tags, protection (go-libp2p style)",
        )
    ]


@hookimpl
def p2pkit_connection_gaters() -> list[PluginSpec[ConnectionGater]]:
    from p2pkit.gater import GaterOptions

    return [
        PluginSpec(
            kind="connection_gater",
            name="allow-deny",
            factory=create_allow_deny_gater,
            options=GaterOptions,
            default_enabled=False,  # its lists say what to gate: asked for by name
            description="allow/deny lists of peer ids and CIDR ranges (the built-in gater)",
        )
    ]
