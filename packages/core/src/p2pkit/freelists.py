"""Interpreter free lists refilled after a burst of connections, so its memory can go back.

Why: CPython hands memory to the system one 1 MiB small-object arena at a time, and only
once every block in the arena is free.  Some object types are not freed when they die
but kept on a free list for reuse.  While many connections are open, such a free list
is emptied (each idle connection holds one object of the type); when they close it is
refilled with the last objects to die, which were allocated during the burst, one or
two in each arena the burst touched -- and each keeps its whole arena resident.

The one such list a closed connection refills is asyncio's list of future iterators
(each ``await`` of a future holds one; 255 at most are kept, a C-level constant of
``_asyncio``): measured after 1,000 closed connections, its 255 iterators sat in
pools of 9 different arenas.  :func:`renew_future_iterators` swaps them for
iterators allocated now, which the allocator places in its fullest arenas (the
long-lived ones), and frees the old ones for real.
"""

from __future__ import annotations

import asyncio

__all__ = ["FUTURE_ITER_FREELIST", "renew_future_iterators"]

FUTURE_ITER_FREELIST = 255
"""Future iterators ``_asyncio`` keeps for reuse (``FI_FREELIST_MAXLEN`` in CPython)."""


def renew_future_iterators(loop: asyncio.AbstractEventLoop) -> None:
    """Replace the future iterators on asyncio's free list with newly allocated ones.

    Taking ``2 * FUTURE_ITER_FREELIST`` iterators empties the list (the first ones come
    from it) and allocates the rest fresh; dropping the fresh ones first fills the list
    with them, so the old ones find it full and are freed.  Costs about a millisecond;
    meant for the heap trim after many connections closed, not for a hot path.
    """
    futures = [loop.create_future() for _ in range(2 * FUTURE_ITER_FREELIST)]
    iterators = [f.__await__() for f in futures]
    old = iterators[:FUTURE_ITER_FREELIST]
    del iterators[:FUTURE_ITER_FREELIST]
    iterators.clear()  # the fresh ones: onto the (empty) free list
    old.clear()  # the list is full: these are freed
    futures.clear()
