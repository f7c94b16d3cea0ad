"""Lazy package attributes (PEP 562), shared by the core and every plugin package.

A package ``__init__`` lists what it exports and where it lives; nothing is imported
until first used.  That keeps entry-point discovery (which imports each plugin's hook
module, and so its package) free of ciphers, OpenSSL and asyncio shells, and keeps
``import p2pkit`` fast.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(
    package: str, exports: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``: ``exports`` maps each public
    name to the module defining it.  A name is imported on first access, then cached in
    the package namespace (later accesses cost nothing)."""
    namespace = sys.modules[package].__dict__

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted([*namespace, *exports])

    return __getattr__, __dir__


__all__ = ["lazy_exports"]
