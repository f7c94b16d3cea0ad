"""Plugin descriptors and the pluggy markers (kept import-light: no plugin code here)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

import pluggy

if TYPE_CHECKING:
    from p2pkit.crypto import PrivateKey
    from p2pkit.events import EventBus
    from p2pkit.peer import PeerId

hookspec = pluggy.HookspecMarker("p2pkit")
hookimpl = pluggy.HookimplMarker("p2pkit")

PluginKind = Literal[
    "transport", "security", "muxer", "connection_manager", "peerstore", "connection_gater"
]


@dataclasses.dataclass(frozen=True)
class NoOptions:
    """Options class of a plugin that takes none."""


@dataclasses.dataclass
class Components:
    """What the host hands to every plugin factory (js-libp2p's "components").

    Plugins read what they need and ignore the rest, so new components can be added
    without breaking factories.  Every field is typed (no string-keyed extras): a
    component that is not available where the factory runs is None (``events`` for a
    gater built at configuration time).
    """

    private_key: PrivateKey
    peer_id: PeerId
    events: EventBus | None = None


@dataclasses.dataclass(frozen=True)
class PluginSpec:
    """Describes one implementation offered by a plugin.

    ``factory(components, options)`` builds the implementation; ``options`` is a
    dataclass type whose fields (with defaults) are the plugin's typed configuration:
    config dicts/TOML are validated against it before anything starts.
    ``protocol_id`` is the wire id for security protocols and muxers.
    ``package`` is filled in by the registry with the distribution that provided it.
    """

    kind: PluginKind
    name: str
    factory: Callable[[Components, Any], Any]
    options: type = NoOptions
    protocol_id: str | None = None
    description: str = ""
    package: str | None = None
    version: str | None = None
