"""Plugin descriptors and the pluggy markers (kept import-light: no plugin code here).

Every plugin, of every kind, is described the same way (the "mould"): one
:class:`PluginSpec` whose ``factory`` is a function ``create(components, options) -> T``
and whose ``options`` is a frozen dataclass holding the plugin's defaults.  What the
core needs to know about a plugin (its order, whether it is on by default, the
addresses it handles, how it bounds its memory) is declared here, so the core never
names a plugin.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

import pluggy

if TYPE_CHECKING:
    from p2pkit.crypto import PrivateKey
    from p2pkit.events import EventBus
    from p2pkit.peer import PeerId

hookspec = pluggy.HookspecMarker("p2pkit")
hookimpl = pluggy.HookimplMarker("p2pkit")

PluginKind = Literal[
    "transport",
    "security",
    "muxer",
    "connection_manager",
    "peerstore",
    "connection_gater",
    "metrics",
]

T = TypeVar("T")


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


#: ``create(components, options) -> T``: the one factory signature of every kind.
Factory = Callable[[Components, Any], T]

#: ``apply_memory_limit(options, limit) -> options``: returns the muxer's options with
#: its per-connection receive memory bounded by ``limit`` bytes (raise ValueError if the
#: options cannot fit; the configuration reports it as a ConfigError).
MemoryLimitHook = Callable[[Any, int], Any]

#: ``apply_stream_limit(options, limit) -> options``: returns the options of a
#: transport that multiplexes by itself with the inbound streams its protocol lets the
#: peer have open at once lowered to at most ``limit`` (never raised).
StreamLimitHook = Callable[[Any, int], Any]


@dataclasses.dataclass(frozen=True)
class PluginSpec(Generic[T]):
    """Describes one implementation offered by a plugin; ``T`` is what it builds.

    ``factory(components, options)`` builds the implementation (a plugin package names
    it ``create`` in its entry-point module and imports heavy modules inside it, so
    that listing plugins stays cheap).  ``options`` is a dataclass type whose fields
    (with defaults) are the plugin's typed configuration: config dicts/TOML are
    validated against it before anything starts.

    Capabilities, declared so that the core never names a plugin:

    * ``protocol_id``: the wire id (security protocols, muxers).
    * ``priority``: order within a kind, higher first, ties by name.  Transports: the
      one chosen when several can handle an address.  Security protocols and muxers:
      the preference order when the user names none.  Shipped plugins use 100 (tcp,
      noise, yamux) and 50 (tls, mplex); third-party plugins default to 0.
    * ``default_enabled``: enabled when the configuration names none of its kind
      (every installed plugin of the kind, in priority order); False for plugins that
      must be asked for by name (insecure plaintext).
    * ``provides``: the multiaddr protocols a transport handles (``("tcp",)``), for
      "enable this transport" hints.
    * ``apply_memory_limit``: muxers (and transports that multiplex by themselves), how
      ``limits.max_muxer_memory_per_conn`` is applied to the options (see
      :data:`MemoryLimitHook`); None = the muxer cannot honour it (a warning says so; a
      transport without it is simply not bounded this way).
    * ``apply_stream_limit``: transports that multiplex by themselves and whose
      protocol grants stream credit (QUIC ``MAX_STREAMS``), how
      ``limits.max_inbound_streams_per_conn`` lowers that credit (see
      :data:`StreamLimitHook`), so a peer at the limit waits for credit instead of
      having its new streams reset by the swarm.  None = the swarm's reset is the only
      bound.  Muxers do not take it: yamux and mplex grant no stream credit (a stream
      beyond their ``max_streams`` is answered with a reset, as the swarm's is), and
      mplex's ``max_streams`` bounds our outbound streams too.

    ``package`` and ``version`` are filled in by the registry with the distribution
    that provided the spec.
    """

    kind: PluginKind
    name: str
    factory: Factory[T]
    options: type = NoOptions
    protocol_id: str | None = None
    description: str = ""
    priority: int = 0
    default_enabled: bool = True
    provides: tuple[str, ...] = ()
    apply_memory_limit: MemoryLimitHook | None = None
    apply_stream_limit: StreamLimitHook | None = None
    package: str | None = None
    version: str | None = None


def priority_order(specs: list[PluginSpec[Any]]) -> list[PluginSpec[Any]]:
    """``specs`` sorted by the documented rule: priority, higher first; ties by name."""
    return sorted(specs, key=lambda s: (-s.priority, s.name))
