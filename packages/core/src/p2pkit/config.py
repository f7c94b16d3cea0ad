"""One validated configuration model, two front doors (builder and dict/TOML).

Every default lives in :data:`DEFAULTS` (go-libp2p's ``defaults.go`` idea: one table,
applied only where the user set nothing).  Validation resolves plugin names against the
registry and turns each plugin's options dict into its typed options dataclass *before*
anything opens a socket; unknown names say what is installed and what to pip-install.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import tomllib
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any

from multiaddr import Multiaddr

from p2pkit.crypto import PrivateKey, generate_private_key, read_private_key
from p2pkit.dialer import DialerOptions
from p2pkit.errors import ConfigError, PluginError
from p2pkit.gater import build_gater
from p2pkit.limits import ResourceLimits, apply_muxer_memory_limit
from p2pkit.network import ConnectionGater
from p2pkit.peer import PeerId
from p2pkit.plugins.registry import PluginRegistry, default_registry
from p2pkit.plugins.spec import Components, PluginKind, PluginSpec

#: Preference order used when the user names no security protocols / muxers: the
#: installed ones, in this order (insecure plaintext is never chosen by default).
DEFAULT_SECURITY_ORDER = ("noise", "tls")
DEFAULT_MUXER_ORDER = ("yamux", "mplex")

DEFAULTS: dict[str, Any] = {
    "listen": [],
    "transports": None,  # None = every installed transport
    "security": None,  # None = installed of DEFAULT_SECURITY_ORDER
    "muxers": None,  # None = installed of DEFAULT_MUXER_ORDER
    "identity": None,  # None = fresh Ed25519 key; else a key file path
    "handshake_timeout": 10.0,  # whole upgrade (security + muxer negotiation)
    "negotiation_timeout": 10.0,  # multistream-select on each stream
    "dial_timeout": 10.0,
    "close_timeout": 2.0,  # graceful close of one connection, then abort
    "stop_timeout": 5.0,  # host stop: wait this long for its tasks after cancelling them
    "max_pending_inbound": 64,  # inbound connections still upgrading
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
    "connection_manager": None,  # None = the default one
    "peerstore": None,  # None = in-memory
    "limits": None,  # table of p2pkit.limits.ResourceLimits fields; None = defaults
    "gater": None,  # table of allow/deny lists (p2pkit.gater.GaterOptions) or a gater object
    "dialer": None,  # table of p2pkit.dialer.DialerOptions fields; None = defaults
}


@dataclasses.dataclass
class ResolvedPlugin:
    """A plugin chosen by the configuration, with its validated options."""

    spec: PluginSpec
    options: Any


@dataclasses.dataclass
class HostConfig:
    """The validated configuration a Host is built from."""

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
    max_pending_inbound: int
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


# -- typed options --------------------------------------------------------------------


def build_options(spec: PluginSpec, values: Mapping[str, Any] | None) -> Any:
    """Instantiate ``spec.options`` from a dict, checking names and basic types."""
    cls = spec.options
    values = dict(values or {})
    if not dataclasses.is_dataclass(cls):
        if values:
            raise ConfigError(f"{spec.kind} plugin {spec.name!r} takes no options")
        return cls()
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ConfigError(
            f"unknown option(s) {', '.join(unknown)} for {spec.kind} plugin {spec.name!r}; "
            f"valid: {', '.join(sorted(fields)) or 'none'}"
        )
    hints = typing.get_type_hints(cls)
    for key, value in values.items():
        expected = hints.get(key)
        if expected is not None and not _type_ok(value, expected):
            raise ConfigError(
                f"option {key}={value!r} for {spec.kind} plugin {spec.name!r}: expected {expected}"
            )
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            values[key] = float(value)
    try:
        return cls(**values)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"invalid options for {spec.kind} plugin {spec.name!r}: {exc}") from exc


def _type_ok(value: Any, expected: Any) -> bool:
    origin = typing.get_origin(expected)
    if expected is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(value, arg) for arg in typing.get_args(expected))
    if expected is type(None):
        return value is None
    if expected is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if origin in (list, tuple, Sequence):
        return isinstance(value, list | tuple)
    if origin is dict:
        return isinstance(value, dict)
    if origin is typing.Literal:
        return value in typing.get_args(expected)
    if isinstance(expected, type):
        return isinstance(value, expected)
    return True


def table_options(cls: type, value: Any, what: str) -> Any:
    """Instantiate the options dataclass ``cls`` from a config table (names and types
    checked like plugin options)."""
    if value is None:
        return cls()
    if isinstance(value, cls):
        return value
    if not isinstance(value, Mapping):
        raise ConfigError(f"{what} must be a table")
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(value) - fields)
    if unknown:
        raise ConfigError(
            f"unknown {what} option(s) {', '.join(unknown)}; valid: {', '.join(sorted(fields))}"
        )
    hints = typing.get_type_hints(cls)
    values = dict(value)
    for key, item in values.items():
        expected = hints.get(key)
        if expected is not None and not _type_ok(item, expected):
            raise ConfigError(f"{what}.{key}={item!r}: expected {expected}")
        if expected is float and isinstance(item, int) and not isinstance(item, bool):
            values[key] = float(item)
    try:
        return cls(**values)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"invalid {what}: {exc}") from exc


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


def load_config(
    source: Mapping[str, Any] | str | os.PathLike[str],
    *,
    registry: PluginRegistry | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> HostConfig:
    """Validate a config dict, or read a TOML file (its ``[p2pkit]`` table)."""
    if isinstance(source, str | os.PathLike):
        try:
            with open(source, "rb") as fh:
                data = tomllib.load(fh)
        except OSError as exc:
            raise ConfigError(f"cannot read config file {source}: {exc}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {source} is not valid TOML: {exc}") from exc
        table = data.get("p2pkit", data)
    else:
        table = dict(source)
        if "p2pkit" in table and isinstance(table["p2pkit"], Mapping):
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
    if v["transports"] is None:
        transports = registry.names("transport")
    else:
        transports = _names(v["transports"], "transports")
    if v["security"] is None:
        have = registry.names("security")
        security = [n for n in DEFAULT_SECURITY_ORDER if n in have]
    else:
        security = _names(v["security"], "security")
    if v["muxers"] is None:
        have = registry.names("muxer")
        muxers = [n for n in DEFAULT_MUXER_ORDER if n in have] + [
            n for n in have if n not in DEFAULT_MUXER_ORDER
        ]
    else:
        muxers = _names(v["muxers"], "muxers")
    # An explicitly empty list is allowed: a host whose transports all bring their own
    # security and muxing (p2pkit.network.MuxedTransport) upgrades nothing.
    if not security and v["security"] is None:
        raise ConfigError(
            "no security protocol configured or installed; install one: pip install p2pkit-noise"
        )
    if not muxers and v["muxers"] is None:
        raise ConfigError(
            "no stream muxer configured or installed; install one: pip install p2pkit-yamux"
        )

    for key in (
        "handshake_timeout",
        "negotiation_timeout",
        "dial_timeout",
        "close_timeout",
        "stop_timeout",
    ):
        if not isinstance(v[key], int | float) or isinstance(v[key], bool) or v[key] <= 0:
            raise ConfigError(f"{key} must be a positive number of seconds")
    if not isinstance(v["max_pending_inbound"], int) or v["max_pending_inbound"] < 1:
        raise ConfigError("max_pending_inbound must be a positive integer")
    for key in ("lazy_negotiation", "enable_ping", "enable_identify", "enable_echo", "enable_perf"):
        if not isinstance(v[key], bool):
            raise ConfigError(f"{key} must be true or false")

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
            Multiaddr(addr)
        except Exception as exc:
            raise ConfigError(f"invalid listen multiaddr {addr!r}: {exc}") from exc

    def single(kind: PluginKind, value: Any) -> ResolvedPlugin | None:
        if value is None:
            return None
        if isinstance(value, str):
            name, opts = value, plugin_options.get(value)
        elif isinstance(value, Mapping):
            value = dict(value)
            name = value.pop("name", "default")
            opts = value
        else:
            raise ConfigError(f"{kind} must be a name or a table of options")
        try:
            spec = registry.get(kind, name)
        except PluginError as exc:
            raise ConfigError(str(exc)) from exc
        return ResolvedPlugin(spec, build_options(spec, opts))

    limits_table = v["limits"]
    if isinstance(limits_table, Mapping) and "max_pending_inbound" not in limits_table:
        limits_table = {**limits_table, "max_pending_inbound": v["max_pending_inbound"]}
    elif limits_table is None:
        limits_table = {"max_pending_inbound": v["max_pending_inbound"]}
    limits: ResourceLimits = table_options(ResourceLimits, limits_table, "limits")
    dialer: DialerOptions = table_options(DialerOptions, v["dialer"], "dialer")
    gater = _build_gater(v["gater"], registry)
    resolved_muxers = _resolve(registry, "muxer", muxers, plugin_options)
    apply_muxer_memory_limit(resolved_muxers, limits.max_muxer_memory_per_conn)

    return HostConfig(
        identity=identity,
        listen=listen,
        transports=_resolve(registry, "transport", transports, plugin_options),
        security=_resolve(registry, "security", security, plugin_options),
        muxers=resolved_muxers,
        connection_manager=single("connection_manager", v["connection_manager"]),
        peerstore=single("peerstore", v["peerstore"]),
        handshake_timeout=float(v["handshake_timeout"]),
        negotiation_timeout=float(v["negotiation_timeout"]),
        dial_timeout=float(v["dial_timeout"]),
        max_pending_inbound=v["max_pending_inbound"],
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
