"""Plugin mechanism: descriptors, pluggy markers and the registry.

A plugin package declares an entry point in the group ``p2pkit``::

    [project.entry-points.p2pkit]
    tcp = "p2pkit_tcp.plugin"

and that module implements hooks of :mod:`p2pkit.plugins.hookspecs` with
:data:`hookimpl`, each returning :class:`PluginSpec` descriptors whose ``factory`` is the
module's ``create(components, options)``.  The rest of the mould (``_ids.py``, lazy
package ``__init__``, priority, default-enable rule, memory and stream hooks, install hints) is in
the core README, "Writing a plugin".

Modules: :mod:`~p2pkit.plugins.spec` (descriptors), :mod:`~p2pkit.plugins.registry`
(discovery), :mod:`~p2pkit.plugins.options` (typed options from config tables),
:mod:`~p2pkit.plugins.select` (which transport handles an address),
:mod:`~p2pkit.plugins.hints` (what to pip-install).
"""

from p2pkit.plugins.spec import (
    Components,
    Factory,
    MemoryLimitHook,
    NoOptions,
    PluginKind,
    PluginSpec,
    StreamLimitHook,
    hookimpl,
    hookspec,
    priority_order,
)

__all__ = [
    "Components",
    "Factory",
    "MemoryLimitHook",
    "NoOptions",
    "PluginKind",
    "PluginSpec",
    "StreamLimitHook",
    "hookimpl",
    "hookspec",
    "priority_order",
]
