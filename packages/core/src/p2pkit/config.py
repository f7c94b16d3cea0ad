"""One validated configuration model, two front doors (builder and dict/TOML).

Every default of the core lives in :data:`DEFAULTS` (go-libp2p's ``defaults.go`` idea:
one table, applied only where the user set nothing); every default of a plugin lives in
its options dataclass, and the core's option tables (``limits``, ``dialer``) in theirs.
No other place writes a default value.  Validation resolves plugin names against the
registry and turns each plugin's options dict into its typed options dataclass *before*
anything opens a socket; unknown names say what is installed and what to pip-install.

The default-enable rule, the same for every kind: when the configuration names no
plugin of a kind, every installed plugin of that kind whose spec is
``default_enabled`` is used, in priority order (``PluginSpec.priority``, higher first,
ties by name); for the single-choice kinds (peerstore, connection manager, gater) the
first of them.  Insecure plaintext (and plugins that need settings to be useful, such
as the SQLite peerstore and the allow/deny gater) are not ``default_enabled``: they are
used only when named.  Transports are always ranked by priority, named or not (the
first that claims an address handles it, :mod:`p2pkit.plugins.select`); named security
protocols and muxers keep the order given, their preference order on the wire.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import tomllib
from collections.abc import Mapping
from typing import Any

from multiaddr import Multiaddr

from p2pkit.crypto import PrivateKey, generate_private_key, read_private_key
from p2pkit.dialer import DialerOptions
from p2pkit.errors import ConfigError, PluginError
from p2pkit.gater import build_gater
from p2pkit.limits import ResourceLimits, apply_muxer_memory_limit, apply_stream_limit
from p2pkit.loops import check_event_loop
from p2pkit.network import ConnectionGater
from p2pkit.peer import PeerId
from p2pkit.plugins.hints import distribution_for_kind
from p2pkit.plugins.options import build_options, check_plugin_tables, table_options, value_fits
from p2pkit.plugins.registry import PluginRegistry, default_registry
from p2pkit.plugins.spec import Components, PluginKind, PluginSpec, priority_order

DEFAULTS: dict[str, Any] = {
    "listen": [],
    "transports": None,  # None = every default-enabled transport (module docstring)
    "security": None,  # None = every default-enabled security protocol, by priority
    "muxers": None,  # None = every default-enabled muxer, by priority
    "identity": None,  # None = fresh Ed25519 key; else a key file path
    "handshake_timeout": 10.0,  # whole upgrade (security + muxer negotiation)
    "negotiation_timeout": 10.0,  # multistream-select on each stream
    "dial_timeout": 10.0,  # socket connect of one dial attempt (the transport's part)
    "close_timeout": 2.0,  # graceful close of one connection, then abort
    "stop_timeout": 5.0,  # host stop: wait this long for its tasks after cancelling them
    # Inbound connections still upgrading: shorthand for limits.max_pending_inbound
    # (None = that limit's default, in p2pkit.limits.ResourceLimits).
    "max_pending_inbound": None,
    # V1Lazy multistream-select (proposal + data without waiting) for every single-protocol
    # stream.  Off by default: js-libp2p 3.3 may reset a stream whose proposal, data and
    # FIN reach it before its handler runs (docs/interop.md); js itself negotiates fully.
    # Callers that only read first (identify, ping) ask for it per stream (lazy=True).
    "lazy_negotiation": False,
    "agent_version": "p2pkit/0.1.0",
    "protocol_version": "ipfs/0.1.0",
    "enable_ping": True,
    "enable_identify": True,
    "enable_echo": False,
    "enable_perf": False,  # perf spec: must not be enabled by default
    "connection_manager": None,  # None = the default-enabled one (built-in "default")
    "peerstore": None,  # None = the default-enabled one (built-in "memory")
    "limits": None,  # table of p2pkit.limits.ResourceLimits fields; None = defaults
    "gater": None,  # table of allow/deny lists (p2pkit.gater.GaterOptions) or a gater object
    "dialer": None,  # table of p2pkit.dialer.DialerOptions fields; None = defaults
    # A metrics plugin's name (options in [plugins.<name>]) or a table with "name"; None
    # = off (no shipped metrics plugin is default_enabled, so none is used unless named).
    "metrics": None,
    "event_loop": "asyncio",  # or "uvloop": the loop p2pkit.loops.run starts
}

_TIMEOUTS = (
    "handshake_timeout",
    "negotiation_timeout",
    "dial_timeout",
    "close_timeout",
    "stop_timeout",
)


@dataclasses.dataclass
class ResolvedPlugin:
    """A plugin chosen by the configuration, with its validated options."""

    spec: PluginSpec[Any]
    options: Any


@dataclasses.dataclass
class HostConfig:
    """The validated configuration a Host is built from.

    ``transports`` are in priority order (the order :func:`~p2pkit.plugins.select.
    choose_transport` expects); ``security`` and ``muxers`` in preference order.
    """

    identity: PrivateKey | None
    listen: list[str]
    transports: list[ResolvedPlugin]
    security: list[ResolvedPlugin]
    muxers: list[ResolvedPlugin]
    connection_manager: ResolvedPlugin | None
    peerstore: ResolvedPlugin | None
    handshake_timeout: float
    negotiation_timeout: float
    dial_timeout: float
    close_timeout: float
    stop_timeout: float
    lazy_negotiation: bool
    agent_version: str
    protocol_version: str
    enable_ping: bool
    enable_identify: bool
    enable_echo: bool
    enable_perf: bool
    registry: PluginRegistry
    limits: ResourceLimits = dataclasses.field(default_factory=lambda: ResourceLimits())
    gater: ConnectionGater | None = None
    dialer: DialerOptions = dataclasses.field(default_factory=lambda: DialerOptions())
    metrics: ResolvedPlugin | None = None
    event_loop: str = "asyncio"

    @property
    def max_pending_inbound(self) -> int:
        """Inbound connections still upgrading (``limits.max_pending_inbound``)."""
        return self.limits.max_pending_inbound


__all__ = [
    "DEFAULTS",
    "HostConfig",
    "ResolvedPlugin",
    "build_options",
    "load_config",
    "table_options",
    "validate",
]


# -- the model ---------------------------------------------------------------------------


def _names(value: Any, what: str) -> list[str]:
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return list(value)
    raise ConfigError(f"{what} must be a list of names (or a comma-separated string)")


def _resolve(
    registry: PluginRegistry,
    kind: PluginKind,
    names: list[str],
    plugin_options: Mapping[str, Mapping[str, Any]],
) -> list[ResolvedPlugin]:
    out = []
    if len(set(names)) != len(names):
        raise ConfigError(f"duplicate {kind} names in {names}")
    for name in names:
        try:
            spec = registry.get(kind, name)
        except PluginError as exc:
            raise ConfigError(str(exc)) from exc
        out.append(ResolvedPlugin(spec, build_options(spec, plugin_options.get(name))))
    return out


def _chosen(registry: PluginRegistry, kind: PluginKind, value: Any, what: str) -> list[str]:
    """The names of ``kind`` to use: the configured ones, or by the default-enable rule.
    Transports are ranked by priority either way (see the module docstring)."""
    if value is None:
        return registry.defaults(kind)
    names = _names(value, what)
    if kind != "transport":
        return names
    ranked = priority_order([registry.get(kind, n) for n in names if n in registry.names(kind)])
    unknown = [n for n in names if n not in registry.names(kind)]
    return [s.name for s in ranked] + unknown  # unknown names fail in _resolve, with hints


def read_table(path: str | os.PathLike[str]) -> Mapping[str, Any]:
    """The ``[p2pkit]`` table of a TOML file (the whole file when it has none)."""
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {path} is not UTF-8 text: {exc}") from exc
    table = data.get("p2pkit", data)
    if not isinstance(table, Mapping):
        raise ConfigError(f"config file {path}: [p2pkit] must be a table")
    return table


def load_config(
    source: Mapping[str, Any] | str | os.PathLike[str],
    *,
    registry: PluginRegistry | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> HostConfig:
    """Validate a config dict, or read a TOML file (its ``[p2pkit]`` table)."""
    if isinstance(source, str | os.PathLike):
        table = read_table(source)
    else:
        if not isinstance(source, Mapping):
            raise ConfigError("a configuration is a dict or a TOML file path")
        table = dict(source)
        if "p2pkit" in table:
            if not isinstance(table["p2pkit"], Mapping):
                raise ConfigError("p2pkit must be a table of options")
            table = dict(table["p2pkit"])
    if overrides:
        table = {**table, **{k: v for k, v in overrides.items() if v is not None}}
    return validate(table, registry=registry)


def validate(table: Mapping[str, Any], *, registry: PluginRegistry | None = None) -> HostConfig:
    registry = registry or default_registry()
    allowed = set(DEFAULTS) | {"plugins"}
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ConfigError(f"unknown configuration key(s): {', '.join(unknown)}")
    v = {**DEFAULTS, **{k: val for k, val in table.items() if k != "plugins"}}
    plugin_options = table.get("plugins") or {}
    if not isinstance(plugin_options, Mapping):
        raise ConfigError("plugins must be a table of plugin name -> options")

    listen = _names(v["listen"], "listen") if v["listen"] else []
    transports = _chosen(registry, "transport", v["transports"], "transports")
    security = _chosen(registry, "security", v["security"], "security")
    muxers = _chosen(registry, "muxer", v["muxers"], "muxers")
    required: tuple[tuple[PluginKind, list[str]], ...] = (("security", security), ("muxer", muxers))
    # An explicitly empty list is allowed: a host whose transports all bring their own
    # security and muxing (p2pkit.network.MuxedTransport) upgrades nothing.
    for kind, names in required:
        if not names and v["security" if kind == "security" else "muxers"] is None:
            dist = distribution_for_kind(kind)
            hint = f"; install one: pip install {dist}" if dist else ""
            raise ConfigError(f"no {kind} plugin configured or installed{hint}")

    for key in _TIMEOUTS:
        if not value_fits(v[key], float) or v[key] <= 0:
            raise ConfigError(f"{key} must be a finite, positive number of seconds, got {v[key]!r}")
    for key in ("agent_version", "protocol_version"):
        if not isinstance(v[key], str):
            raise ConfigError(f"{key} must be a string, got {v[key]!r}")
    pending = v["max_pending_inbound"]
    if pending is not None and (not isinstance(pending, int) or pending < 1):
        raise ConfigError("max_pending_inbound must be a positive integer")
    for key in ("lazy_negotiation", "enable_ping", "enable_identify", "enable_echo", "enable_perf"):
        if not isinstance(v[key], bool):
            raise ConfigError(f"{key} must be true or false")

    event_loop = check_event_loop(v["event_loop"])
    identity = v["identity"]
    if identity is not None and not hasattr(identity, "sign"):
        if not isinstance(identity, str | os.PathLike):
            raise ConfigError("identity must be a key file path or a PrivateKey")
        try:
            identity = read_private_key(identity)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot load identity {identity}: {exc}") from exc

    for addr in listen:
        try:
            protocols = [p.name for p in Multiaddr(addr).protocols()]
        except Exception as exc:
            raise ConfigError(f"invalid listen multiaddr {addr!r}: {exc}") from exc
        if "p2p" in protocols or "ipfs" in protocols:
            # A listen address names where to bind, not who we are: a /p2p/ part there is
            # either redundant or someone else's id, so it is refused rather than guessed.
            raise ConfigError(
                f"listen multiaddr {addr!r} must not contain /p2p/ (the peer id is the host's)"
            )

    def single(kind: PluginKind, value: Any) -> ResolvedPlugin | None:
        if isinstance(value, str):
            name, opts = value, plugin_options.get(value)
        elif value is None or isinstance(value, Mapping):
            value = dict(value or {})
            name = value.pop("name", None)
            opts = value
        else:
            raise ConfigError(f"{kind} must be a name or a table of options")
        if name is None:  # the default-enable rule (module docstring)
            defaults = registry.defaults(kind)
            if not defaults:
                if opts:
                    raise ConfigError(f"{kind} options given but no {kind} plugin is named")
                return None
            # Single-choice plugins take their options in their own table (above), not
            # in [plugins.<name>]: that table may belong to a plugin of another kind
            # with the same name (the "memory" peerstore and a "memory" transport).
            name = defaults[0]
        try:
            spec = registry.get(kind, name)
        except PluginError as exc:
            raise ConfigError(str(exc)) from exc
        return ResolvedPlugin(spec, build_options(spec, opts))

    limits_table = v["limits"]
    if pending is not None and (limits_table is None or isinstance(limits_table, Mapping)):
        limits_table = {"max_pending_inbound": pending, **(limits_table or {})}
    limits: ResourceLimits = table_options(ResourceLimits, limits_table, "limits")
    dialer: DialerOptions = table_options(DialerOptions, v["dialer"], "dialer")
    gater_value = v["gater"]
    if gater_value is None and registry.defaults("connection_gater"):
        gater_value = {"name": registry.defaults("connection_gater")[0]}
    gater = _build_gater(gater_value, registry)
    resolved_muxers = _resolve(registry, "muxer", muxers, plugin_options)
    resolved_transports = _resolve(registry, "transport", transports, plugin_options)
    check_plugin_tables(registry, plugin_options)
    # Transports that multiplex by themselves (QUIC) bound their memory the same way.
    muxing = [t for t in resolved_transports if t.spec.apply_memory_limit is not None]
    apply_muxer_memory_limit(resolved_muxers + muxing, limits.max_muxer_memory_per_conn)
    # ... and grant their peers no more concurrent streams than the limit (QUIC).
    apply_stream_limit(resolved_transports, limits.max_inbound_streams_per_conn)

    return HostConfig(
        identity=identity,
        listen=listen,
        transports=resolved_transports,
        security=_resolve(registry, "security", security, plugin_options),
        muxers=resolved_muxers,
        connection_manager=single("connection_manager", v["connection_manager"]),
        peerstore=single("peerstore", v["peerstore"]),
        handshake_timeout=float(v["handshake_timeout"]),
        negotiation_timeout=float(v["negotiation_timeout"]),
        dial_timeout=float(v["dial_timeout"]),
        close_timeout=float(v["close_timeout"]),
        stop_timeout=float(v["stop_timeout"]),
        lazy_negotiation=v["lazy_negotiation"],
        agent_version=str(v["agent_version"]),
        protocol_version=str(v["protocol_version"]),
        enable_ping=v["enable_ping"],
        enable_identify=v["enable_identify"],
        enable_echo=v["enable_echo"],
        enable_perf=v["enable_perf"],
        registry=registry,
        limits=limits,
        gater=gater,
        dialer=dialer,
        metrics=single("metrics", v["metrics"]),
        event_loop=event_loop,
    )


def __getattr__(name: str) -> Any:
    # HostBuilder moved to p2pkit.builder (it builds a Host, and the host module reads
    # this one: keeping it here made an import cycle).  Old imports keep working.
    if name == "HostBuilder":
        return getattr(importlib.import_module("p2pkit.builder"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _build_gater(value: Any, registry: PluginRegistry) -> ConnectionGater | None:
    """The ``gater`` value -> a gater: ``{"name": <connection_gater plugin>, ...options}``
    names an installed gater plugin (found like any other plugin); anything else is
    handled by :func:`p2pkit.gater.build_gater`."""
    if not (isinstance(value, Mapping) and "name" in value):
        return build_gater(value)
    opts = dict(value)
    name = opts.pop("name")
    try:
        spec = registry.get("connection_gater", name)
    except PluginError as exc:
        raise ConfigError(str(exc)) from exc
    # Gaters are built at validation time, before the host's identity exists: they
    # get throwaway components (a gater decides on addresses and peer ids only).
    key = generate_private_key("ed25519")
    components = Components(private_key=key, peer_id=PeerId.from_public_key(key.public_key))
    gater = spec.factory(components, build_options(spec, opts))
    if not isinstance(gater, ConnectionGater):
        raise ConfigError(f"connection_gater plugin {name!r} did not build a ConnectionGater")
    return gater
