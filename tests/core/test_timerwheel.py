"""The shared timer wheel (p2pkit.timerwheel): never early, at most a granule late,
one loop handle per slot, cancellation, one failing callback does not stop the rest."""

from __future__ import annotations

import asyncio
import gc

import pytest

from p2pkit.timerwheel import MAX_GRANULE, MIN_GRANULE, coarse_timeout, granule, timer_wheel


def test_granule_is_a_power_of_two_eighth_of_the_delay_within_bounds() -> None:
    assert granule(30.0) == MAX_GRANULE == 1.0
    assert granule(4.0) == 0.5
    assert granule(1.0) == 0.125
    assert granule(0.0) == MIN_GRANULE
    for delay in (0.003, 0.05, 0.7, 2.5, 7.9, 100.0):
        g = granule(delay)
        assert MIN_GRANULE <= g <= MAX_GRANULE
        assert g <= max(delay / 8, MIN_GRANULE)


async def test_fires_never_early_and_at_most_a_granule_late() -> None:
    loop = asyncio.get_running_loop()
    wheel = timer_wheel()
    assert timer_wheel(loop) is wheel  # one per loop
    fired: dict[float, float] = {}
    start = loop.time()
    for delay in (0.02, 0.05, 0.1, 0.2):
        wheel.call_later(delay, lambda d=delay: fired.__setitem__(d, loop.time() - start))
    async with asyncio.timeout(5):
        while len(fired) < 4:
            await asyncio.sleep(0.01)
    for delay, at in fired.items():
        assert at >= delay - 0.002  # the loop's clock resolution
    assert len(wheel) == 0


async def test_timers_share_slots_and_cancel() -> None:
    wheel = timer_wheel()
    ran: list[int] = []
    timers = [wheel.call_later(30.0, lambda i=i: ran.append(i)) for i in range(1000)]
    assert len(wheel) == 1000 and wheel.slots <= 2 and wheel.armed  # one loop handle
    for t in timers[::2]:
        t.cancel()
        t.cancel()  # idempotent
    assert len(wheel) == 500 and not timers[0].pending and timers[1].pending
    for t in timers[1::2]:
        t.cancel()
    assert len(wheel) == 0 and wheel.slots == 0
    assert not wheel.armed  # nothing pending: no loop handle either
    wheel.call_later(0.05, lambda: ran.append(-1))
    wheel.call_later(0.05, lambda: ran.append(-2))
    assert wheel.slots == 1 and wheel.armed
    async with asyncio.timeout(5):
        while len(ran) < 2:
            await asyncio.sleep(0.01)
    assert ran == [-1, -2]  # in order, and no cancelled timer ran
    assert not wheel.armed


async def test_an_earlier_timer_rearms_and_callbacks_can_reschedule() -> None:
    wheel = timer_wheel()
    ran: list[str] = []
    wheel.call_later(30.0, lambda: ran.append("late"))

    def again() -> None:
        ran.append("early")
        if ran.count("early") < 3:
            wheel.call_later(0.02, again)

    wheel.call_later(0.02, again)
    async with asyncio.timeout(5):
        while ran.count("early") < 3:
            await asyncio.sleep(0.01)
    assert ran == ["early"] * 3 and len(wheel) == 1 and wheel.armed  # "late" still pending


async def test_a_failing_callback_does_not_stop_the_others() -> None:
    loop = asyncio.get_running_loop()
    errors: list[dict[str, object]] = []
    loop.set_exception_handler(lambda _loop, ctx: errors.append(ctx))
    wheel = timer_wheel()
    ran: list[str] = []

    def boom() -> None:
        raise RuntimeError("boom")

    wheel.call_later(0.02, boom)
    wheel.call_later(0.02, lambda: ran.append("after"))
    async with asyncio.timeout(5):
        while not ran:
            await asyncio.sleep(0.01)
    assert ran == ["after"]
    assert len(errors) == 1 and isinstance(errors[0]["exception"], RuntimeError)


async def test_a_coarse_timeout_expires_like_asyncio_timeout_and_never_early() -> None:
    loop = asyncio.get_running_loop()
    start = loop.time()
    with pytest.raises(TimeoutError):
        async with coarse_timeout(0.05) as deadline:
            await asyncio.sleep(10)
    assert deadline.expired()
    assert loop.time() - start >= 0.05
    assert len(timer_wheel(loop)) == 0


async def test_coarse_timeouts_that_do_not_expire_leave_nothing_in_the_loop() -> None:
    loop = asyncio.get_running_loop()
    wheel = timer_wheel(loop)
    # As on a node: the wheel holds other (keepalive) timers, and the loop a timer due
    # before these bounds (asyncio drops a cancelled handle only once it is first due).
    keepalive = wheel.call_later(60.0, lambda: None)
    blocker = loop.call_later(20.0, lambda: None)
    try:
        handles = loop_handles(loop)
        for _ in range(10):
            async with coarse_timeout(30.0) as deadline:
                await asyncio.sleep(0)
            assert not deadline.expired()
        assert len(wheel) == 1
        # The wheel re-arms its one handle for the earlier slot (at most twice here);
        # ten asyncio.timeout(30) would leave ten cancelled handles for the 30 s.
        assert loop_handles(loop) <= handles + 2
    finally:
        blocker.cancel()
        keepalive.cancel()
    async with coarse_timeout(None):
        await asyncio.sleep(0)
    assert len(wheel) == 0


async def test_a_coarse_timeout_lets_other_errors_and_cancellation_through() -> None:
    with pytest.raises(ValueError):
        async with coarse_timeout(5.0):
            raise ValueError

    async def waits() -> None:
        async with coarse_timeout(5.0):
            await asyncio.sleep(10)

    task = asyncio.ensure_future(waits())
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(timer_wheel()) == 0


def loop_handles(loop: asyncio.AbstractEventLoop) -> int:
    """asyncio timer handles alive (0 on a loop with handles of its own kind)."""
    return sum(1 for o in gc.get_objects() if type(o) is asyncio.TimerHandle)
