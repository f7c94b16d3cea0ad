"""The fluent front door: ``HostBuilder().security("noise").muxer("yamux").build()``.

The same model as :func:`p2pkit.config.load_config` (it fills the same table and
validates it with :func:`p2pkit.config.validate`).
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from p2pkit.config import HostConfig, validate
from p2pkit.crypto import PrivateKey
from p2pkit.host import Host
from p2pkit.loops import run
from p2pkit.network import ConnectionGater
from p2pkit.plugins.registry import PluginRegistry

T = TypeVar("T")


class HostBuilder:
    """Fluent front door onto the same model as :func:`load_config`.

    Order of ``.security()`` / ``.muxer()`` calls is preference order.  ``build()``
    validates and returns an unstarted :class:`~p2pkit.host.Host` (use ``async with``
    or ``await host.start()``).
    """

    def __init__(self, registry: PluginRegistry | None = None) -> None:
        self._registry = registry
        self._table: dict[str, Any] = {}
        self._plugins: dict[str, dict[str, Any]] = {}

    def _append(self, key: str, name: str, options: dict[str, Any]) -> HostBuilder:
        self._table.setdefault(key, []).append(name)
        if options:
            self._plugins.setdefault(name, {}).update(options)
        return self

    def identity(self, key: PrivateKey | str | os.PathLike[str]) -> HostBuilder:
        self._table["identity"] = key
        return self

    def listen(self, *addrs: str) -> HostBuilder:
        self._table.setdefault("listen", []).extend(str(a) for a in addrs)
        return self

    def transport(self, name: str, **options: Any) -> HostBuilder:
        return self._append("transports", name, options)

    def security(self, name: str, **options: Any) -> HostBuilder:
        return self._append("security", name, options)

    def muxer(self, name: str, **options: Any) -> HostBuilder:
        return self._append("muxers", name, options)

    def connection_manager(self, name: str | None = None, **options: Any) -> HostBuilder:
        """The connection manager ``name`` (None: the default-enabled one) and options."""
        self._table["connection_manager"] = {"name": name, **options}
        return self

    def peerstore(self, name: str | None = None, **options: Any) -> HostBuilder:
        """The peerstore ``name`` (None: the default-enabled one) and its options."""
        self._table["peerstore"] = {"name": name, **options}
        return self

    def limits(self, **limits: Any) -> HostBuilder:
        """Resource limits (fields of :class:`~p2pkit.limits.ResourceLimits`)."""
        self._table.setdefault("limits", {}).update(limits)
        return self

    def gater(self, gater: ConnectionGater | None = None, **lists: Any) -> HostBuilder:
        """A connection gater object, or the built-in one's allow/deny lists
        (``deny_peers=[...]``, ``allow_cidrs=[...]``...)."""
        self._table["gater"] = gater if gater is not None else lists
        return self

    def dialer(self, **options: Any) -> HostBuilder:
        """Dialer options (fields of :class:`~p2pkit.dialer.DialerOptions`)."""
        self._table.setdefault("dialer", {}).update(options)
        return self

    def metrics(self, name: str, **options: Any) -> HostBuilder:
        """Record metrics with the ``metrics`` plugin ``name`` and its options
        (``.metrics("prometheus", address="127.0.0.1:9464")``); off unless called."""
        self._table["metrics"] = {"name": name, **options}
        return self

    def option(self, **values: Any) -> HostBuilder:
        """Set top-level options (``handshake_timeout=5.0``, ``enable_echo=True``...)."""
        self._table.update(values)
        return self

    def event_loop(self, name: str) -> HostBuilder:
        """The event loop :meth:`run` starts: ``"asyncio"`` (default) or ``"uvloop"``."""
        self._table["event_loop"] = name
        return self

    def config(self) -> HostConfig:
        table = dict(self._table)
        if self._plugins:
            table["plugins"] = self._plugins
        return validate(table, registry=self._registry)

    def build(self) -> Host:
        return Host(self.config())

    def run(self, main: Callable[[Host], Awaitable[T]]) -> T:
        """Build the host, start the configured event loop, and run ``main(host)`` with
        the host started (stopped again when ``main`` returns or raises)."""
        host = self.build()

        async def hosted() -> T:
            async with host:
                return await main(host)

        return run(hosted(), host.config.event_loop)


__all__ = ["HostBuilder"]
