"""Plugin mechanism: descriptors, pluggy markers and the registry.

A plugin package declares an entry point in the group ``p2pkit``::

    [project.entry-points.p2pkit]
    tcp = "p2pkit_tcp.plugin"

and that module implements hooks of :mod:`p2pkit.plugins.hookspecs` with
:data:`hookimpl`, each returning :class:`PluginSpec` descriptors.
"""

from p2pkit.plugins.spec import Components, NoOptions, PluginKind, PluginSpec, hookimpl, hookspec

__all__ = ["Components", "NoOptions", "PluginKind", "PluginSpec", "hookimpl", "hookspec"]
