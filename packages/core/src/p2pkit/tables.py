"""Per-connection tables that a burst of streams grew, shrunk again once nearly empty.

A CPython dict or set never gives its table back when entries are deleted: the stream
table of a connection that once had 32 streams open at a time keeps a table sized for
32 (1-2 KiB per dict, 2 KiB per set) for as long as the connection lives, idle or not,
and every layer keeps one (the muxer's session and shell, the resource manager's
connection scope).  :func:`shrink` rebuilds such a table *in place*: ``clear()`` frees
the large table and the few entries left are put back (in their order), so code that
holds a reference to the table (a loop's local variable) still sees the one in use.

Callers check when an entry leaves for good (a stream ends), never per frame: a length
and a size read, and a rebuild once after each burst, of fewer than
:data:`SHRINK_BELOW` entries.
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["EMPTY_OVERSIZED", "OVERSIZED", "SHRINK_BELOW", "shrink"]

SHRINK_BELOW = 8
"""A table of fewer entries than this is rebuilt if it is over :data:`OVERSIZED`."""
OVERSIZED = 1024
"""Bytes (``sys.getsizeof``) beyond which a nearly empty table is rebuilt: a dict that
never held more than 21 entries (632 bytes) or a set that never held more than 18 (728)
is left alone; one of 7 entries, rebuilt, takes 352 (dict) or 728 bytes (set)."""
EMPTY_OVERSIZED = 400
"""The same for an empty table: a set that held 5 entries (728 bytes) or a dict that
held 11 (632) goes back to 216 or 64 bytes; a dict that held at most 10 (352 bytes) is
left alone, so a connection with a few streams at a time does not rebuild it each time
the last one ends."""


def shrink(table: dict[Any, Any] | set[Any]) -> None:
    """Give ``table`` a table sized for its entries if it is nearly empty and oversized
    (see the module docstring); the same object, same entries, same order."""
    n = len(table)
    if n >= SHRINK_BELOW or sys.getsizeof(table) <= (OVERSIZED if n else EMPTY_OVERSIZED):
        return
    if isinstance(table, dict):
        items = list(table.items())
        table.clear()
        table.update(items)
    else:
        keys = list(table)
        table.clear()
        table.update(keys)
