"""The future-iterator free list is refilled with fresh iterators (p2pkit.freelists)."""

from __future__ import annotations

import asyncio

import pytest

from p2pkit.bufpool import ConnectionTally
from p2pkit.freelists import FUTURE_ITER_FREELIST, renew_future_iterators

pytestmark = pytest.mark.skipif(
    asyncio.Future.__module__ != "_asyncio", reason="the free list is _asyncio's (C futures)"
)


def _iterators(loop: asyncio.AbstractEventLoop, n: int) -> list[object]:
    return [loop.create_future().__await__() for _ in range(n)]


def _on_free_list(loop: asyncio.AbstractEventLoop) -> set[int]:
    """Addresses of the iterators the free list holds now (taken and given back)."""
    taken = _iterators(loop, FUTURE_ITER_FREELIST)
    ids = {id(i) for i in taken}
    taken.clear()  # LIFO list: the same blocks go back onto it
    return ids


async def test_the_old_iterators_leave_the_free_list() -> None:
    loop = asyncio.get_running_loop()
    # Twice the list's length alive: the list is empty, half of these fill it when
    # dropped, the other half stay alive so their blocks cannot be handed out again.
    burst = _iterators(loop, 2 * FUTURE_ITER_FREELIST)
    kept = burst[FUTURE_ITER_FREELIST:]
    del burst[FUTURE_ITER_FREELIST:]
    burst.clear()
    old = _on_free_list(loop)
    renew_future_iterators(loop)
    assert not old & _on_free_list(loop)
    assert len(kept) == FUTURE_ITER_FREELIST


async def test_the_heap_trim_renews_the_free_list() -> None:
    loop = asyncio.get_running_loop()
    burst = _iterators(loop, 2 * FUTURE_ITER_FREELIST)
    kept = burst[FUTURE_ITER_FREELIST:]
    del burst[FUTURE_ITER_FREELIST:]
    burst.clear()
    old = _on_free_list(loop)
    ConnectionTally().trim()
    assert not old & _on_free_list(loop)
    assert kept
