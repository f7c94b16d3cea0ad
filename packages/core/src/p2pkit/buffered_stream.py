"""The read side a muxer's streams share: a :class:`~p2pkit.io.ReadBuffer` the
connection fills, and its unread bytes counted in the connection's
:class:`~p2pkit.reservation.BufferReservation`.

yamux and mplex streams read the same way and account memory the same way; only how
consumed bytes turn into credit for the peer differs (a yamux window update; mplex
congestion, which may let a paused connection read again).  So the accounting lives
here once; each muxer's stream passes its connection's credit function (called with the
stream's key and the bytes consumed) and implements
:meth:`BufferedMuxedStream._reset_by_limit`.

The rules the accounting keeps:

* every byte the connection feeds is added to ``held`` by the connection (on its
  per-frame path, inlined there) and leaves ``held`` exactly once: when it is read
  (:meth:`~BufferedMuxedStream._on_consume`), or when it is dropped unread
  (:meth:`~BufferedMuxedStream._on_held_less`,
  :meth:`~BufferedMuxedStream._drop_buffered`);
* bytes put back with :meth:`~BufferedMuxedStream.unread` (negotiation read ahead) are
  held again, but their credit went to the peer when they were first read:
  :class:`~p2pkit.io.ReadBuffer` does not report them to ``on_consume`` a second time,
  so :meth:`~BufferedMuxedStream.read` takes them off ``held`` itself
  (``_returned`` counts them);
* a reservation refused while accounting resets the stream (``_reset_by_limit``); the
  session goes on.

This is the data path (once per read): :meth:`~BufferedMuxedStream._on_consume` is the
``ReadBuffer``'s callback itself, keeps the reservation on the stream (``_memory``, not
reached through the connection) and inlines the threshold check; it calls the
connection's credit function directly (a bound method kept per stream), not a method of
the stream that would call it: sharing the accounting adds no call per read.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import Generic, TypeVar

from p2pkit.abc import MuxedStream
from p2pkit.errors import ResourceLimitExceeded
from p2pkit.io import ReadBuffer
from p2pkit.reservation import BufferReservation

__all__ = ["BufferedMuxedStream"]

KeyT = TypeVar("KeyT")


class BufferedMuxedStream(MuxedStream, Generic[KeyT]):
    """A muxed stream reading from a ReadBuffer, its unread bytes reserved in
    ``memory`` (the connection's reservation, shared by all of its streams).

    ``credit(key, n)`` is called for every ``n`` bytes the application consumes for the
    first time: the connection's way of giving the peer credit for this stream
    (``key``: how the connection names it).  Subclasses set ``_error`` when the stream
    fails and implement :meth:`_reset_by_limit`."""

    def __init__(
        self, memory: BufferReservation, credit: Callable[[KeyT, int], None], key: KeyT
    ) -> None:
        self._memory = memory
        self._credit = credit
        self._credit_key = key
        self._error: BaseException | None = None  # why reads/writes fail
        # ReadBuffer reports each received byte once (bytes put back with unread() are
        # not reported again), so credit is returned exactly once.
        self._buf = ReadBuffer(on_consume=self._on_consume)
        self._returned = 0  # bytes put back with unread() and not read again (accounted)

    @abc.abstractmethod
    def _reset_by_limit(self, refusal: ResourceLimitExceeded) -> None:
        """No memory for what the peer sent on this stream: reset it."""

    # -- reading ---------------------------------------------------------------------

    async def read(self, max_bytes: int = -1) -> bytes:
        data = await self._buf.read(max_bytes)
        if self._returned:  # only after unread(): read first, not reported to _on_consume
            n = min(self._returned, len(data))
            self._returned -= n
            self._on_held_less(n)
        return data

    def unread(self, data: bytes) -> None:
        """Bytes put back (negotiation read ahead) are held again: accounted again, as
        their credit has gone back to the peer."""
        self._buf.unread(data)
        if data and self._error is None:
            self._returned += len(data)
            memory = self._memory
            memory.held += len(data)
            if memory.held > memory.reserved:
                self._reserve()

    # -- accounting --------------------------------------------------------------------

    def _on_consume(self, n: int) -> None:
        """The ReadBuffer's ``on_consume``: ``n`` bytes read for the first time."""
        memory = self._memory
        held = memory.held - n
        memory.held = held
        if held < memory.release_below:
            memory.shrink()
        self._credit(self._credit_key, n)

    def _on_held_less(self, n: int) -> None:
        """``n`` held bytes left without going through ``_on_consume``."""
        memory = self._memory
        memory.held -= n
        if memory.held < memory.release_below:
            memory.shrink()

    def _reserve(self) -> None:
        """``held`` went past what is reserved: reserve more, or reset this stream."""
        try:
            self._memory.grow()
        except ResourceLimitExceeded as exc:  # counted and logged by the resource manager
            self._reset_by_limit(exc)

    def _drop_buffered(self, exc: BaseException) -> None:
        """Fail reads with ``exc``.  What was buffered is dropped unread and the
        reservation shrinks with it: a peer that fills streams then resets them must
        not leave the memory reserved."""
        self._on_held_less(self._buf.size)
        self._returned = 0
        self._buf.fail(exc)
