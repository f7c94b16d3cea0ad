"""Listeners over ``asyncio.Server`` objects, for stream-socket transports.

:class:`ServerListener` is one server behind the :class:`~p2pkit.abc.Listener`
interface; :class:`ListenerSet` keeps the listeners a transport opened so that its
``close()`` closes them all (the transport suite checks that ``Transport.close()`` stops
every listener).  Re-exported by :mod:`p2pkit.stream_socket`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from p2pkit.abc import Listener

if TYPE_CHECKING:
    from multiaddr import Multiaddr


class ServerListener(Listener):
    """A :class:`~p2pkit.abc.Listener` over one ``asyncio.Server``."""

    def __init__(
        self,
        server: asyncio.Server,
        addrs: Sequence[Multiaddr],
        on_close: Callable[[ServerListener], None] | None = None,
    ) -> None:
        self._server = server
        self._addrs = list(addrs)
        self._on_close = on_close

    @property
    def addrs(self) -> list[Multiaddr]:
        return list(self._addrs)

    async def close(self) -> None:
        """Stop accepting now; accepted connections live on.

        ``Server.wait_closed`` is not awaited on purpose: on Python 3.12+ it also waits
        for every accepted connection to end.
        """
        if self._server.is_serving() or self._server.sockets:
            self._server.close()
        if self._on_close is not None:
            self._on_close(self)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {[str(a) for a in self._addrs]}>"


class ListenerSet:
    """The listeners a transport opened, so that its ``close()`` can close them all."""

    def __init__(self) -> None:
        self._open: set[ServerListener] = set()

    def track(self, server: asyncio.Server, addrs: Sequence[Multiaddr]) -> ServerListener:
        listener = ServerListener(server, addrs, self._open.discard)
        self._open.add(listener)
        return listener

    async def close(self) -> None:
        for listener in list(self._open):
            await listener.close()


__all__ = ["ListenerSet", "ServerListener"]
