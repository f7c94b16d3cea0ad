"""The plugin registry: finds implementations through entry points and pluggy hooks.

Entry points of the group ``p2pkit`` are loaded lazily, on the first lookup, one by
one: a plugin that fails to import is recorded (with its package and exception) and
reported when someone asks for something it would have provided, without breaking
the others.  Plugins can also be registered directly (tests, applications that do not
install packages): the same hooks, the same path.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Iterable
from importlib import metadata
from types import ModuleType
from typing import Any

import pluggy

from p2pkit.errors import PluginLoadError, PluginNotFound
from p2pkit.plugins import hookspecs
from p2pkit.plugins.hints import distribution_for_plugin
from p2pkit.plugins.spec import PluginKind, PluginSpec, priority_order

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "p2pkit"

#: Environment variable: comma-separated entry-point names not to load (like tox's
#: TOX_DISABLED_EXTERNAL_PLUGINS), e.g. to run without a broken third-party plugin.
DISABLE_ENV = "P2PKIT_DISABLE_PLUGINS"

_HOOKS: dict[PluginKind, str] = {
    "transport": "p2pkit_transports",
    "security": "p2pkit_security_protocols",
    "muxer": "p2pkit_stream_muxers",
    "connection_manager": "p2pkit_connection_managers",
    "peerstore": "p2pkit_peerstores",
    "connection_gater": "p2pkit_connection_gaters",
    "metrics": "p2pkit_metrics",
}


@dataclasses.dataclass(frozen=True)
class BrokenPlugin:
    """An entry point that could not be loaded."""

    name: str
    package: str | None
    error: BaseException

    def describe(self) -> str:
        pkg = self.package or "unknown package"
        err = f"{type(self.error).__name__}: {self.error}"
        return f"plugin {self.name!r} from {pkg} failed to load: {err}"


class PluginRegistry:
    """Holds every known :class:`PluginSpec`, by kind and name."""

    def __init__(self, *, load_entry_points: bool = True) -> None:
        self._pm = pluggy.PluginManager("p2pkit")
        self._pm.add_hookspecs(hookspecs)
        self._load_entry_points = load_entry_points
        self._entry_points_loaded = False
        self._packages: dict[int, tuple[str | None, str | None]] = {}
        self._cache: dict[PluginKind, dict[str, PluginSpec[Any]]] | None = None
        self.broken: list[BrokenPlugin] = []

    # -- registration ------------------------------------------------------------------

    def register(self, plugin: ModuleType | object, name: str | None = None) -> None:
        """Register a plugin object/module directly (hook implementations on it)."""
        self._pm.register(plugin, name=name)
        self._cache = None

    def add(self, *specs: PluginSpec[Any]) -> None:
        """Register descriptors directly, without writing a hook module."""

        class _Direct:
            def __init__(self, items: tuple[PluginSpec[Any], ...]) -> None:
                self.items = items

        holder = _Direct(specs)
        for kind, hook in _HOOKS.items():
            mine = [s for s in specs if s.kind == kind]
            if mine:
                setattr(holder, hook, _make_hook(mine))
        self._pm.register(holder)
        self._cache = None

    def _ensure_entry_points(self) -> None:
        if self._entry_points_loaded or not self._load_entry_points:
            return
        self._entry_points_loaded = True
        disabled = {n.strip() for n in os.environ.get(DISABLE_ENV, "").split(",") if n.strip()}
        seen: set[str] = set()
        for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
            if ep.name in disabled or ep.name in seen:
                continue
            seen.add(ep.name)
            dist = getattr(ep, "dist", None)
            package = dist.metadata["Name"] if dist is not None else None
            version = dist.version if dist is not None else None
            try:
                module = ep.load()
                self._pm.register(module, name=f"ep:{ep.name}")
            except Exception as exc:  # a broken plugin must not break the others
                log.warning("p2pkit plugin %r (%s) failed to load: %s", ep.name, package, exc)
                self.broken.append(BrokenPlugin(ep.name, package, exc))
                continue
            self._packages[id(module)] = (package, version)

    # -- lookup --------------------------------------------------------------------------

    def _all(self) -> dict[PluginKind, dict[str, PluginSpec[Any]]]:
        if self._cache is not None:
            return self._cache
        self._ensure_entry_points()
        table: dict[PluginKind, dict[str, PluginSpec[Any]]] = {k: {} for k in _HOOKS}
        for kind, hook_name in _HOOKS.items():
            hook = getattr(self._pm.hook, hook_name)
            impls = hook.get_hookimpls()  # registration order
            # Installed plugins first, then direct registrations, which override by name.
            ordered = [i for i in impls if (self._pm.get_name(i.plugin) or "").startswith("ep:")]
            ordered += [i for i in impls if i not in ordered]
            for impl in ordered:
                package, version = self._packages.get(id(impl.plugin), (None, None))
                try:
                    specs = impl.function()
                except Exception as exc:
                    name = self._pm.get_name(impl.plugin) or "?"
                    self.broken.append(BrokenPlugin(name, package, exc))
                    log.warning("p2pkit plugin hook %s of %s failed: %s", hook_name, name, exc)
                    continue
                for spec in specs or ():
                    if spec.kind != kind:
                        continue
                    if package is not None and spec.package is None:
                        spec = dataclasses.replace(spec, package=package, version=version)
                    table[kind][spec.name] = spec
        self._cache = table
        return table

    def specs(self, kind: PluginKind) -> list[PluginSpec[Any]]:
        """Every spec of ``kind``, in priority order (higher first, ties by name)."""
        return priority_order(list(self._all()[kind].values()))

    def names(self, kind: PluginKind) -> list[str]:
        """Names of :meth:`specs`, in the same (priority) order."""
        return [s.name for s in self.specs(kind)]

    def defaults(self, kind: PluginKind) -> list[str]:
        """The names enabled when the configuration names none of ``kind``: every
        installed spec with ``default_enabled``, in priority order."""
        return [s.name for s in self.specs(kind) if s.default_enabled]

    def get(self, kind: PluginKind, name: str) -> PluginSpec[Any]:
        """The plugin ``name`` of ``kind``; PluginNotFound / PluginLoadError otherwise."""
        table = self._all()[kind]
        spec = table.get(name)
        if spec is not None:
            return spec
        package = distribution_for_plugin(kind, name)
        for broken in self.broken:
            if broken.name == name or (package and broken.package == package):
                raise PluginLoadError(broken.describe())
        raise PluginNotFound(kind, name, sorted(table), package)

    def by_protocol_id(self, kind: PluginKind, protocol_id: str) -> PluginSpec[Any] | None:
        for spec in self._all()[kind].values():
            if spec.protocol_id == protocol_id:
                return spec
        return None

    def all_specs(self) -> Iterable[PluginSpec[Any]]:
        for table in self._all().values():
            yield from table.values()


def _make_hook(specs: list[PluginSpec[Any]]) -> Any:
    def hook() -> list[PluginSpec[Any]]:
        return list(specs)

    return pluggy.HookimplMarker("p2pkit")(hook)


_default: PluginRegistry | None = None


def default_registry() -> PluginRegistry:
    """The process-wide registry built from installed entry points."""
    global _default
    if _default is None:
        _default = PluginRegistry()
    return _default
