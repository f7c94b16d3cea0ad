"""Hook specifications.  Each hook returns a list of :class:`PluginSpec`.

Implement any subset in a module named by an entry point of the ``p2pkit`` group.
Hooks are called once, lazily, the first time the registry is asked for a kind.
Each spec's ``factory`` builds the interface named in the hook's return type.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from p2pkit.plugins.spec import PluginSpec, hookspec

if TYPE_CHECKING:
    from p2pkit.abc import (
        ConnectionGater,
        ConnectionManager,
        Peerstore,
        SecurityProtocol,
        StreamMuxer,
        Transport,
    )
    from p2pkit.metrics import Metrics


@hookspec
def p2pkit_transports() -> list[PluginSpec[Transport]]:  # type: ignore[empty-body]
    """Transports offered (kind ``transport``)."""


@hookspec
def p2pkit_security_protocols() -> list[PluginSpec[SecurityProtocol]]:  # type: ignore[empty-body]
    """Security protocols offered (kind ``security``), each with its protocol id."""


@hookspec
def p2pkit_stream_muxers() -> list[PluginSpec[StreamMuxer]]:  # type: ignore[empty-body]
    """Stream muxers offered (kind ``muxer``), each with its protocol id."""


@hookspec
def p2pkit_connection_managers() -> list[PluginSpec[ConnectionManager]]:  # type: ignore[empty-body]
    """Connection managers offered (kind ``connection_manager``)."""


@hookspec
def p2pkit_peerstores() -> list[PluginSpec[Peerstore]]:  # type: ignore[empty-body]
    """Peerstore backends offered (kind ``peerstore``)."""


@hookspec
def p2pkit_connection_gaters() -> list[PluginSpec[ConnectionGater]]:  # type: ignore[empty-body]
    """Connection gaters offered (kind ``connection_gater``)."""


@hookspec
def p2pkit_metrics() -> list[PluginSpec[Metrics]]:  # type: ignore[empty-body]
    """Metrics backends offered (kind ``metrics``); none is used unless named."""
