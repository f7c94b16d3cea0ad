"""A muxer's received-but-unread bytes, reserved in a memory scope in whole chunks.

A peer decides how much a muxer buffers for it (data on streams the application does not
read yet), so that memory is reserved in the connection's
:class:`~p2pkit.abc.MemoryScope` (the resource manager).  Reserving per frame would put
a call chain through every scope on the hot path; instead the muxer keeps one integer,
``held``, and compares it with two thresholds:

* ``held > reserved``: call :meth:`BufferReservation.grow` (may raise
  :class:`~p2pkit.errors.ResourceLimitExceeded`: the muxer resets the stream the data
  came on);
* ``held < release_below``: call :meth:`BufferReservation.shrink`.

The reservation moves in :data:`CHUNK` steps and keeps :data:`HEADROOM` to twice that
beyond ``held`` while data is buffered, so only swings of more than :data:`HEADROOM` cost
a call; once the buffers are empty everything is released (a reader that keeps up pays
one reserve and one release per burst it drains).  An idle session reserves nothing: a
node holding 10,000 quiet connections must not have its memory budget spent on them.
Without a scope the thresholds are never crossed (the same comparison, nothing else).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from p2pkit.abc import MemoryScope

#: Granularity of reservations (bytes).
CHUNK = 64 * 1024
#: Reserved beyond what is held after a call (and up to twice this before a release).
HEADROOM = 4 * CHUNK
#: What a session whose buffers are empty keeps reserved.
IDLE_MAX = 0
_NEVER = 1 << 62


class BufferReservation:
    """Bytes held for one session's peer (``held``) and what is reserved for them."""

    __slots__ = ("scope", "held", "reserved", "release_below")

    def __init__(self, scope: MemoryScope | None) -> None:
        self.scope = scope
        self.held = 0
        self.reserved = 0 if scope is not None else _NEVER
        self.release_below = -_NEVER

    def grow(self) -> None:
        """Reserve enough for ``held`` plus headroom, or raise ResourceLimitExceeded
        (then nothing more is reserved: the caller drops the data that did not fit)."""
        scope = self.scope
        if scope is None:
            return
        target = -(-(self.held + HEADROOM) // CHUNK) * CHUNK
        scope.reserve_memory(target - self.reserved)
        self.reserved = target
        self.release_below = self._release_below(target)

    def add(self, delta: int) -> None:
        """``held += delta``, then grow or shrink as the thresholds say; raises what
        :meth:`grow` raises (``held`` keeps ``delta``: the caller decides).  For callers
        off the per-frame path; muxers inline the comparisons."""
        held = self.held + delta
        self.held = held
        if held > self.reserved:
            self.grow()
        elif held < self.release_below:
            self.shrink()

    def shrink(self) -> None:
        """Give back what ``held`` no longer needs (keeping the headroom)."""
        scope = self.scope
        if scope is None:
            return
        held = max(self.held, 0)
        target = 0 if held == 0 else -(-(held + HEADROOM) // CHUNK) * CHUNK
        if target < self.reserved:
            scope.release_memory(self.reserved - target)
            self.reserved = target
        self.release_below = self._release_below(target)

    @staticmethod
    def _release_below(target: int) -> int:
        """Shrink when ``held`` falls this low: to empty (1) for a small reservation,
        else once more than twice the headroom is no longer needed."""
        return max(target - 2 * HEADROOM, 1) if target else -_NEVER

    def close(self) -> None:
        """The session ended: release everything; from now on nothing is accounted."""
        scope, self.scope = self.scope, None
        if scope is not None and self.reserved:
            scope.release_memory(self.reserved)
        self.reserved = _NEVER
        self.release_below = -_NEVER


__all__ = ["CHUNK", "HEADROOM", "IDLE_MAX", "BufferReservation"]
