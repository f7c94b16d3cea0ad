"""Tasks waiting for a session's condition to change, at no cost while none waits.

:class:`Waiters` replaces ``asyncio.Event`` in :class:`~p2pkit_quic.session.QuicSession`
(new inbound stream, streams changed during close, session ended): an Event holds a
deque from its creation (760 bytes: a deque allocates a 64-slot block even empty), three
per connection; this holds nothing until a task waits, then one future per waiter.
"""

from __future__ import annotations

import asyncio


class Waiters:
    """Futures of the tasks waiting for a condition; :meth:`wake` resolves all of them.

    As ``Event.clear(); await Event.wait()`` with ``Event.set()`` to wake: a waiter checks
    its condition, waits, and checks again once woken (a wake-up is no promise that the
    condition holds)."""

    __slots__ = ("_futures",)

    def __init__(self) -> None:
        self._futures: list[asyncio.Future[None]] | None = None

    async def wait(self) -> None:
        """Until the next :meth:`wake` (or the caller is cancelled)."""
        future = asyncio.get_running_loop().create_future()
        if self._futures is None:
            self._futures = [future]
        else:
            self._futures.append(future)
        try:
            await future
        finally:
            futures = self._futures
            if futures is not None and future in futures:  # cancelled, not woken
                futures.remove(future)
                if not futures:
                    self._futures = None

    def wake(self) -> None:
        """Wake every task waiting now."""
        futures, self._futures = self._futures, None
        if futures:
            for future in futures:
                if not future.done():
                    future.set_result(None)
