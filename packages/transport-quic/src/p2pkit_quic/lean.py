"""What aioquic builds for every connection and an established, idle one need not hold
(memory per idle connection is a headline figure; the QUIC README's "Memory and CPU per
idle connection" gives the measured effect of each step).

:mod:`p2pkit_quic.release` lets go of what the handshake used; this module keeps
structures that aioquic's constructor builds eagerly from costing memory until they are
used:

* **The frame-handler table** (:func:`bind_frame_handlers_lazily`): aioquic builds, per
  connection, a dict of 33 entries, each a tuple of a bound method and its allowed
  epochs (5 KB).  It becomes a dict that binds an entry the first time a frame of that
  type arrives, from a table of method names shared by every connection of the class:
  an idle connection has seen a handful of frame types.  An unknown frame type still
  raises ``KeyError``, which aioquic turns into ``FRAME_ENCODING_ERROR``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aioquic.quic.connection import QuicConnection

HandlerTable = dict[int, tuple[str, frozenset[Any]]]
"""Frame type -> (name of the connection's handler method, epochs it is allowed in)."""

_HANDLER_TABLES: dict[type, HandlerTable] = {}
"""One table per connection class (a subclass may override handlers)."""


class FrameHandlers(dict[int, tuple[Any, frozenset[Any]]]):
    """A connection's frame-handler table, each entry bound on first use."""

    __slots__ = ("_connection", "_table")

    def __init__(self, connection: QuicConnection, table: HandlerTable) -> None:
        super().__init__()
        self._connection = connection
        self._table = table

    def __missing__(self, frame_type: int) -> tuple[Any, frozenset[Any]]:
        name, epochs = self._table[frame_type]  # KeyError: an unknown frame type
        entry = (getattr(self._connection, name), epochs)
        self[frame_type] = entry
        return entry


def bind_frame_handlers_lazily(connection: QuicConnection) -> None:
    """Replace the table aioquic's constructor just built by a :class:`FrameHandlers`."""
    built: dict[int, tuple[Any, frozenset[Any]]] = connection._QuicConnection__frame_handlers  # type: ignore[attr-defined]
    cls = type(connection)
    table = _HANDLER_TABLES.get(cls)
    if table is None:
        table = {}
        for frame_type, (method, epochs) in built.items():
            name = method.__func__.__name__
            # What getattr finds by that name must be the method aioquic bound.
            if getattr(cls, name) is not method.__func__:
                raise RuntimeError(f"aioquic's handler of frame {frame_type:#x} is not {name}")
            table[frame_type] = (name, epochs)
        _HANDLER_TABLES[cls] = table
    connection._QuicConnection__frame_handlers = FrameHandlers(connection, table)  # type: ignore[attr-defined]
