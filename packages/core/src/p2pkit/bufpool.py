"""Receive buffers that cost nothing while a connection is idle.

A node holds many connections and most of them are idle, so a receive buffer owned by
each connection (1 MiB, to read bulk transfers in few event-loop iterations) is memory
paid per connection for a speed only busy connections use.  Here instead:

* :class:`BufferPool`: per-thread free lists of ``bytearray`` views by exact size,
  bounded in count per size and in bytes.  Taking from it is a list pop, so a busy
  connection pays no allocation (and no zero-fill) per read; what it does not keep is
  freed.
* :class:`ReceiveBuffer`: one connection's receive sizing.  It *lends* a buffer from
  the pool only for the duration of one socket read (``get_buffer`` ... ``buffer_updated``
  of an :class:`asyncio.BufferedProtocol`, one synchronous sequence on selector event
  loops) and gives it back right after the bytes were handed on -- those bytes are only
  valid during that call anyway (the :class:`~p2pkit.channel.ChannelBase` contract).
  Between reads a connection holds no buffer at all, only its size: that starts at
  :data:`MIN_SIZE`, grows fourfold (up to the connection's maximum) after each read
  that filled the buffer, and halves after :data:`SHRINK_AFTER` reads in a row that used
  at most an eighth of it.  So a quiet connection reads into a few KiB, a bulk transfer
  into the maximum, and no per-connection timer is needed to shrink anything.  Growth
  is fast and shrinking slow on purpose: a read that fills the buffer usually means
  another read (one more event-loop iteration) for the rest, while a buffer larger
  than the read costs nothing (it is only lent).

Nothing is lent before the first read, so a connection that is refused right after it
was accepted (before the event loop ever reads it) never had a buffer.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import threading
from array import array
from collections.abc import Callable

from p2pkit.freelists import renew_future_iterators

__all__ = [
    "MIN_SIZE",
    "SHRINK_AFTER",
    "TRIM_DELAY",
    "TRIM_POSTPONE_MAX",
    "BufferPool",
    "ConnectionTally",
    "ReceiveBuffer",
    "connections",
    "thread_pool",
]

MIN_SIZE = 4096
"""A connection's first reads, and its reads once it is quiet, take at most this much."""
SHRINK_AFTER = 8
"""Reads in a row using at most an eighth of the buffer after which its size halves."""
POOL_MAX_BYTES = 8 << 20
"""Bytes a thread's pool keeps at most (plus one buffer of a larger size, if that is all
it holds: a ``read_buffer_size`` above this still reads without allocating)."""
TRIM_DELAY = 1.0
"""Seconds between a halving of the connection count and the heap trim it causes."""
TRIM_POSTPONE_MAX = 8
"""Times a pending trim is put off by connections still closing (one delay each)."""
POOL_MAX_PER_SIZE = 4
"""Free buffers of one size a thread's pool keeps at most.  On a selector event loop a
read lends one buffer at a time, so one per size is all that is ever reused."""


class BufferPool:
    """Free lists of writable buffers (``memoryview`` of ``bytearray``) by exact size."""

    __slots__ = ("_bytes", "_free", "max_bytes", "max_per_size")

    def __init__(
        self, max_bytes: int = POOL_MAX_BYTES, max_per_size: int = POOL_MAX_PER_SIZE
    ) -> None:
        self.max_bytes = max_bytes
        self.max_per_size = max_per_size
        self._free: dict[int, list[memoryview]] = {}
        # Bytes kept, as a C integer (array): an int object stored by the last read of a
        # burst of connections would stay in, and keep resident, the burst's memory
        # once they closed (p2pkit.freelists).
        self._bytes = array("q", (0,))

    @property
    def held_bytes(self) -> int:
        """Bytes of the free buffers kept."""
        return self._bytes[0]

    @property
    def held_count(self) -> int:
        """Number of free buffers kept."""
        return sum(len(v) for v in self._free.values())

    def take(self, size: int) -> memoryview:
        """A buffer of exactly ``size`` bytes: a free one, or a new one."""
        free = self._free.get(size)
        if free:
            self._bytes[0] -= size
            return free.pop()
        return memoryview(bytearray(size))

    def give(self, buf: memoryview) -> None:
        """Hand a buffer back; it is kept if the bounds allow, else dropped (freed).

        The caller must not use ``buf`` afterwards: it will be lent again.
        """
        size = len(buf)
        free = self._free.setdefault(size, [])
        if len(free) >= self.max_per_size:
            return
        held = self._bytes[0]
        if held + size > self.max_bytes and held:
            return
        free.append(buf)
        self._bytes[0] = held + size

    def clear(self) -> None:
        """Drop every free buffer (their memory goes back to the allocator)."""
        self._free.clear()
        self._bytes[0] = 0


_local = threading.local()


def thread_pool() -> BufferPool:
    """This thread's pool (an event loop runs in one thread: no locking needed)."""
    pool: BufferPool | None = getattr(_local, "pool", None)
    if pool is None:
        pool = _local.pool = BufferPool()
    return pool


class ReceiveBuffer:
    """One connection's receive buffer: lent per read, sized by recent reads (module doc).

    Use: ``get()`` in ``get_buffer``; in ``buffer_updated(n)``, hand ``filled(n)`` on,
    then call ``done(n)``; ``release()`` when a read ended without ``buffer_updated``
    (EOF, error, connection lost).
    """

    __slots__ = ("_lent", "_pool", "_small", "lends", "max_size", "size")

    def __init__(self, max_size: int, pool: BufferPool | None = None) -> None:
        self.max_size = max_size
        self.size = min(MIN_SIZE, max_size)
        """The size the next read gets."""
        self.lends = 0
        """Buffers lent so far (0: this connection never had a receive buffer)."""
        self._pool = pool
        self._small = 0  # reads in a row that used at most an eighth of the buffer
        self._lent: memoryview | None = None

    @property
    def held(self) -> int:
        """Bytes lent to this connection now (0 between reads)."""
        lent = self._lent
        return 0 if lent is None else len(lent)

    def get(self) -> memoryview:
        lent = self._lent
        if lent is None:  # else: a read that found nothing (EAGAIN) left it with us
            pool = self._pool or thread_pool()
            lent = self._lent = pool.take(self.size)
            self.lends += 1
        return lent

    def filled(self, nbytes: int) -> memoryview:
        """The bytes the last read put in the lent buffer (valid until :meth:`done`)."""
        lent = self._lent
        assert lent is not None, "buffer_updated without get_buffer"
        return lent[:nbytes]

    def done(self, nbytes: int) -> None:
        """The read's bytes were handed on: adapt the size, give the buffer back."""
        lent = self._lent
        if lent is None:
            return
        size = len(lent)
        if nbytes >= size:
            self.size = min(size << 2, self.max_size)
            self._small = 0
        elif nbytes <= size >> 3 and size > MIN_SIZE:
            self._small += 1
            if self._small >= SHRINK_AFTER:
                self.size = max(size >> 1, MIN_SIZE)
                self._small = 0
        else:
            self._small = 0
        self.release()

    def release(self) -> None:
        """Give the lent buffer (if any) back to the pool."""
        lent = self._lent
        if lent is not None:
            self._lent = None
            (self._pool or thread_pool()).give(lent)


# -- giving memory back after many connections closed ---------------------------------------


class ConnectionTally:
    """Counts live connections; when they fell to half of their peak (and at least
    :attr:`min_drop` of them closed), returns freed heap memory to the system.

    Why: a closed connection's objects (socket, security layer, muxer session, their
    callbacks) reference each other in cycles, so only the cyclic garbage collector
    frees them, and the C allocator (glibc) then keeps the freed memory in its heap:
    after a burst of connections closes, most of their memory would stay in the
    process's RSS until some later full collection, and part of it for good.  So a
    trim runs a full ``gc.collect()`` and then ``malloc_trim(0)``, which hands the
    heap's free pages back (measured with 1,000 closed connections: RSS over the
    baseline from 24 to 14 MiB; the rest is Python's small-object arenas, kept by a
    few surviving objects, see ``benchmarks/idle_memory.py``).  Both walk memory, so a
    trim runs only after a halving of the connection count, :data:`TRIM_DELAY` seconds
    later or once the burst of closes is over (one pending per process): a handful of
    times after a burst, never per connection.  A trim also renews asyncio's future
    iterator free list (:mod:`p2pkit.freelists`).
    """

    __slots__ = (
        "_closes_waiting",
        "_pending_on",
        "_postponed",
        "_trim",
        "delay",
        "live",
        "min_drop",
        "peak",
        "trims",
    )

    def __init__(self, min_drop: int = 32, delay: float = TRIM_DELAY) -> None:
        self.live = 0
        self.peak = 0
        self.min_drop = min_drop
        self.delay = delay
        self.trims = 0
        """Trims done (gc.collect; malloc_trim too where the C library has it)."""
        self._trim: Callable[[int], int] | bool | None = False  # False: not looked up yet
        self._pending_on: asyncio.AbstractEventLoop | None = None  # loop a trim waits on
        self._closes_waiting = 0  # connections closed while a trim waits
        self._postponed = 0  # times the waiting trim was put off (see _trim_when_quiet)

    def opened(self) -> None:
        if self._trim is False:
            # Looked up before the first connection's objects exist, not at the first
            # trim: what loading ctypes allocates lives for good, and allocated after a
            # burst of connections it would land in their half-empty memory pools and
            # keep those arenas from being returned.
            self._trim = _malloc_trim()
        self.live += 1
        if self.live > self.peak:
            self.peak = self.live

    def closed(self) -> None:
        self.live -= 1
        if self._pending_on is not None:
            self._closes_waiting += 1
        if self.live <= self.peak // 2 and self.peak - self.live >= self.min_drop:
            self.peak = self.live
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self.trim()
                return
            if self._pending_on is not loop:  # (a trim pending on a dead loop never runs)
                self._pending_on = loop
                self._closes_waiting = 0
                self._postponed = 0
                loop.call_later(self.delay, self._trim_when_quiet)

    def _trim_when_quiet(self) -> None:
        """The scheduled trim, put off while connections still close in numbers.

        Why: what the last connections of a burst free when they close goes onto the
        interpreter's free lists (which ``gc.collect()`` empties) and asyncio's future
        iterator list (:mod:`p2pkit.freelists`); a trim that ran before the burst ended
        would leave those lists holding blocks of the burst's arenas, and those arenas
        resident.  So the trim waits until fewer than ``min_drop`` connections closed
        during one delay (at most :data:`TRIM_POSTPONE_MAX` times: steady churn does
        not put it off for ever).
        """
        loop = self._pending_on
        if (
            loop is not None
            and self._closes_waiting >= self.min_drop
            and self._postponed < TRIM_POSTPONE_MAX
        ):
            self._closes_waiting = 0
            self._postponed += 1
            loop.call_later(self.delay, self._trim_when_quiet)
            return
        self.trim()

    def trim(self) -> None:
        """Collect cyclic garbage and return the C heap's free pages to the system now."""
        self._pending_on = None
        self.trims += 1
        gc.collect()
        with contextlib.suppress(RuntimeError):  # no running loop: no asyncio free list used
            renew_future_iterators(asyncio.get_running_loop())
        if self._trim is False:
            self._trim = _malloc_trim()
        if callable(self._trim):
            self._trim(0)


def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or None (another C library, or no ctypes).

    ``ctypes`` is imported here, when the first connection opens, not at import time:
    it is optional (not in every Python build) and costs import time most processes
    never need.
    """
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        trim: Callable[[int], int] = libc.malloc_trim
    except (ImportError, OSError, AttributeError):
        return None
    return trim


connections = ConnectionTally()
"""The process's tally, kept by :class:`~p2pkit.stream_socket.StreamSocketConnection`."""
