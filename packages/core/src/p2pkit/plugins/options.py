"""Typed options: a config table (dict/TOML) checked against an options dataclass.

Plugin options and the core's option tables (limits, dialer) are dataclasses whose
fields carry the defaults; these functions check names and basic types and build the
instance, so a mistake is a :class:`~p2pkit.errors.ConfigError` before anything starts.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from p2pkit.errors import ConfigError
from p2pkit.plugins.spec import PluginSpec

if TYPE_CHECKING:
    from p2pkit.plugins.registry import PluginRegistry


def build_options(spec: PluginSpec[Any], values: Mapping[str, Any] | None) -> Any:
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
        if expected is not None and not value_fits(value, expected):
            raise ConfigError(
                f"option {key}={value!r} for {spec.kind} plugin {spec.name!r}: expected {expected}"
            )
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            values[key] = float(value)
    try:
        return cls(**values)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"invalid options for {spec.kind} plugin {spec.name!r}: {exc}") from exc


def value_fits(value: Any, expected: Any) -> bool:
    """Does ``value`` (from TOML or a dict) fit the annotation ``expected``?"""
    origin = typing.get_origin(expected)
    if expected is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(value_fits(value, arg) for arg in typing.get_args(expected))
    if expected is type(None):
        return value is None
    if expected is float:
        # NaN and infinities pass every "> 0" check and then break timers: never valid.
        return (
            isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        )
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
        if expected is not None and not value_fits(item, expected):
            raise ConfigError(f"{what}.{key}={item!r}: expected {expected}")
        if expected is float and isinstance(item, int) and not isinstance(item, bool):
            values[key] = float(item)
    try:
        return cls(**values)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"invalid {what}: {exc}") from exc


def check_plugin_tables(registry: PluginRegistry, tables: Mapping[str, Any]) -> None:
    """Options for a plugin name nobody provides are a typo (``yamuxx``), not a no-op."""
    known = {spec.name for spec in registry.all_specs()}
    for name, options in tables.items():
        if name not in known:
            raise ConfigError(
                f"options given for unknown plugin {name!r}; installed: {', '.join(sorted(known))}"
            )
        if not isinstance(options, Mapping):
            raise ConfigError(f"plugins.{name} must be a table of options")
