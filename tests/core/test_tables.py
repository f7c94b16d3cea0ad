"""Tables a burst grew are rebuilt in place once nearly empty (p2pkit.tables), and the
resource manager's table of a connection's streams is one of them."""

from __future__ import annotations

import sys

from p2pkit.limits import UNLIMITED, Limits
from p2pkit.rcmgr import ResourceManager
from p2pkit.tables import EMPTY_OVERSIZED, OVERSIZED, SHRINK_BELOW, shrink


def test_a_nearly_empty_oversized_dict_is_rebuilt_in_place_in_order() -> None:
    table = {i: str(i) for i in range(200)}
    for i in range(200):
        if i not in (150, 7, 99):
            del table[i]
    before = sys.getsizeof(table)
    alias = table  # what a loop's local variable holds
    shrink(table)
    assert alias is table and list(table.items()) == [(7, "7"), (99, "99"), (150, "150")]
    assert sys.getsizeof(table) < OVERSIZED < before
    table[1] = "one"  # still a working dict
    assert table[1] == "one" and len(table) == 4


def test_a_set_is_rebuilt_and_an_emptied_table_given_back() -> None:
    keys = set(range(100))
    keys -= set(range(2, 100))
    shrink(keys)
    assert keys == {0, 1} and sys.getsizeof(keys) < OVERSIZED
    keys.clear()
    emptied = {i: i for i in range(15)}  # 632 bytes: over the empty-table bound only
    for i in range(15):
        del emptied[i]
    assert sys.getsizeof(emptied) > EMPTY_OVERSIZED
    shrink(emptied)
    assert emptied == {} and sys.getsizeof(emptied) == sys.getsizeof({})


def test_full_or_small_tables_are_left_alone() -> None:
    full = {i: i for i in range(200)}
    size = sys.getsizeof(full)
    shrink(full)  # (nothing to give back: no copy either)
    assert sys.getsizeof(full) == size and len(full) == 200
    few = {i: i for i in range(SHRINK_BELOW)}  # at the bound: not "nearly empty"
    for i in range(22, 40):
        few[i] = i
    for i in range(22, 40):
        del few[i]
    grown = sys.getsizeof(few)
    shrink(few)
    assert sys.getsizeof(few) == grown > OVERSIZED
    small = {1: 1}
    del small[1]  # 224 bytes, under the empty-table bound: kept for the next stream
    shrink(small)
    assert sys.getsizeof(small) == sys.getsizeof({1: 1})


def test_a_connection_scope_gives_back_what_a_burst_of_streams_grew() -> None:
    """100 streams at once on one connection, then all but one end: the scope's set of
    streams kept a table for 100 (8 KiB) for the connection's life."""
    rm = ResourceManager(Limits(UNLIMITED, UNLIMITED, UNLIMITED, UNLIMITED, UNLIMITED))
    conn = rm.open_connection("inbound", None)
    streams = [conn.open_stream("inbound") for _ in range(100)]
    assert sys.getsizeof(conn.streams) > 4 * OVERSIZED
    for stream in streams[1:]:
        stream.close()
    assert conn.streams == {streams[0]} and sys.getsizeof(conn.streams) < OVERSIZED
    streams[0].close()
    assert not conn.streams and rm.system.streams_in == 0
    assert sys.getsizeof(conn.streams) == sys.getsizeof(set())
    conn.close()
    assert rm.system.empty and rm.tracked_scopes == 0
