"""One coarse timer wheel per event loop, for timers that every connection has.

Why: a keepalive timer per connection puts one ``loop.call_later`` handle per connection
in asyncio's timer heap (10,000 at 10,000 connections, twice that while pings are in
flight), and every ping re-arms it: heap pushes, pops and cancelled-handle clean-ups
whose Python-level comparisons grow with the number of connections.  Such timers need
no millisecond precision, so here their deadlines are rounded *up* to a granule that
grows with the delay (1/8 of it, a power of two, at most 1 s): timers due in the same
granule share one slot, the wheel holds one ``loop.call_at`` handle (for its earliest
slot), and when it fires every timer due runs in that one callback.  At 10,000
connections with a 30 s keepalive the loop's heap holds one handle instead of 10,000
timers; arming and cancelling a timer is a dict insert and delete.

A timer never fires early; it fires at most one granule (1/8 of its delay, 1 s at
most) late.
"""

from __future__ import annotations

import asyncio
import math
import weakref
from collections.abc import Callable
from types import TracebackType

__all__ = ["CoarseTimeout", "TimerWheel", "WheelTimer", "coarse_timeout", "timer_wheel"]

#: Granule bounds, seconds (powers of two, so that slot times are exact floats).
MAX_GRANULE = 1.0
MIN_GRANULE = 2.0**-10


def granule(delay: float) -> float:
    """The rounding step for a timer ``delay`` seconds away: the largest power of two
    not above ``delay / 8``, within [MIN_GRANULE, MAX_GRANULE]."""
    if delay >= 8 * MAX_GRANULE:
        return MAX_GRANULE
    if delay <= 8 * MIN_GRANULE:
        return MIN_GRANULE
    return 2.0 ** math.floor(math.log2(delay / 8))


class WheelTimer:
    """A scheduled callback (what :meth:`TimerWheel.call_later` returns)."""

    __slots__ = ("_callback", "_slot", "_wheel")

    def __init__(self, wheel: TimerWheel, slot: float, callback: Callable[[], object]) -> None:
        self._wheel = wheel
        self._slot: float | None = slot
        self._callback = callback

    def cancel(self) -> None:
        """Drop the timer if it has not fired (idempotent)."""
        if self._slot is not None:
            self._wheel._cancel(self)

    @property
    def pending(self) -> bool:
        return self._slot is not None


class TimerWheel:
    """Coarse timers of one event loop, grouped into shared slots (module docstring)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        # slot time -> its timers (insertion ordered); a slot is dropped when it empties.
        self._slots: dict[float, dict[WheelTimer, None]] = {}
        # One loop handle, for the earliest slot.  Why not one per slot: handles of slots
        # whose timers were all cancelled would stay in the loop's heap until due (up to
        # a keepalive interval after a burst of connections closed), each pinning the
        # memory pool it was allocated in.
        self._handle: asyncio.TimerHandle | None = None
        self._armed: float | None = None

    def call_later(self, delay: float, callback: Callable[[], object]) -> WheelTimer:
        """Run ``callback()`` in ``delay`` seconds, up to one granule later."""
        when = self._loop.time() + max(delay, 0.0)
        step = granule(delay)
        slot = math.ceil(when / step) * step
        timers = self._slots.get(slot)
        if timers is None:
            timers = self._slots[slot] = {}
            if self._armed is None or slot < self._armed:
                self._arm(slot)
        timer = WheelTimer(self, slot, callback)
        timers[timer] = None
        return timer

    def _arm(self, slot: float) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._armed = slot
        self._handle = self._loop.call_at(slot, self._fire)

    def _cancel(self, timer: WheelTimer) -> None:
        slot = timer._slot
        timer._slot = None
        timers = self._slots.get(slot)  # type: ignore[arg-type]
        if timers is not None:
            timers.pop(timer, None)
            if not timers:
                del self._slots[slot]  # type: ignore[arg-type]
                if not self._slots and self._handle is not None:
                    self._handle.cancel()
                    self._handle = self._armed = None

    def _fire(self) -> None:
        limit = max(self._loop.time(), self._armed or 0.0)
        self._handle = self._armed = None
        for slot in sorted(s for s in self._slots if s <= limit):
            timers = self._slots.pop(slot)
            for timer in timers:
                timer._slot = None
                try:
                    timer._callback()
                except Exception as exc:  # one failing timer must not starve the others
                    self._loop.call_exception_handler(
                        {"message": "timer wheel callback failed", "exception": exc}
                    )
        if self._slots:
            first = min(self._slots)
            if self._armed is None or first < self._armed:
                self._arm(first)

    def __len__(self) -> int:
        """Timers pending (tests and introspection)."""
        return sum(len(t) for t in self._slots.values())

    @property
    def slots(self) -> int:
        """Slots holding timers (tests and introspection)."""
        return len(self._slots)

    @property
    def armed(self) -> bool:
        """Whether the wheel holds a loop handle (it does only while timers are pending)."""
        return self._handle is not None


_WHEELS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, TimerWheel] = (
    weakref.WeakKeyDictionary()
)
#: Loops that take no weak reference (an extension-type loop may not): held strongly,
#: dropped once closed.
_STRONG: dict[asyncio.AbstractEventLoop, TimerWheel] = {}


def timer_wheel(loop: asyncio.AbstractEventLoop | None = None) -> TimerWheel:
    """The wheel of ``loop`` (default: the running loop), created on first use."""
    loop = loop or asyncio.get_running_loop()
    try:
        wheel = _WHEELS.get(loop)
        if wheel is None:
            wheel = _WHEELS[loop] = TimerWheel(loop)
    except TypeError:  # no weak reference to this loop
        wheel = _STRONG.get(loop)
        if wheel is None:
            for old in [k for k in _STRONG if k.is_closed()]:
                del _STRONG[old]
            wheel = _STRONG[loop] = TimerWheel(loop)
    return wheel


class CoarseTimeout:
    """``asyncio.timeout(delay)`` whose deadline is a timer of the loop's wheel.

    Why: each ``asyncio.timeout`` puts a handle in the loop's timer heap, and one that is
    cancelled early (the usual end of a handshake or negotiation bound) stays there until
    its deadline unless the heap is mostly cancelled handles.  After a burst of new
    connections, the last handshakes' handles (and their contexts) would stay for the
    whole timeout, pinning part of the burst's memory after the connections closed.  A
    wheel timer is a dict entry, dropped when cancelled.  It fires at most one granule
    (1/8 of the delay, 1 s at most) late, never early; on expiry the timeout behaves as
    ``asyncio.timeout``'s (the task is cancelled, TimeoutError raised at the exit,
    ``expired()`` true).
    """

    __slots__ = ("_cm", "_delay", "_timer")

    def __init__(self, delay: float | None) -> None:
        self._delay = delay
        self._cm = asyncio.timeout(None)
        self._timer: WheelTimer | None = None

    async def __aenter__(self) -> asyncio.Timeout:
        cm = await self._cm.__aenter__()
        if self._delay is not None:
            self._timer = timer_wheel().call_later(self._delay, self._expire)
        return cm

    def _expire(self) -> None:
        self._timer = None
        self._cm.reschedule(asyncio.get_running_loop().time())  # due now: cancels the task

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        timer = self._timer
        if timer is not None:
            self._timer = None
            timer.cancel()
        await self._cm.__aexit__(exc_type, exc, tb)  # raises TimeoutError once expired


def coarse_timeout(delay: float | None) -> CoarseTimeout:
    """An ``async with`` bound like ``asyncio.timeout(delay)``, kept in the wheel
    (:class:`CoarseTimeout`): for the per-connection handshake and negotiation bounds."""
    return CoarseTimeout(delay)
