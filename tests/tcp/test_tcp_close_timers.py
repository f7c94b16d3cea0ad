"""Closing connections leaves no timers behind (p2pkit.stream_socket's close bound).

Why it matters: a timer handle per closed connection that stays in asyncio's heap until
its deadline (``close_timeout`` later) keeps part of the memory of a burst of closed
connections resident; the close bound lives in the loop's shared timer wheel instead.
"""

from __future__ import annotations

import asyncio
import gc
import math

import pytest
from multiaddr import Multiaddr

from p2pkit.stream_socket import _wait_until
from p2pkit.testing.transport_suite import dispose, open_pair
from p2pkit.timerwheel import timer_wheel
from p2pkit_tcp import TcpOptions, TcpTransport

LOCAL = Multiaddr("/ip4/127.0.0.1/tcp/0")


def _pending_timer_handles() -> int:
    return sum(1 for o in gc.get_objects() if type(o) is asyncio.TimerHandle)


async def test_the_close_bound_raises_at_its_deadline_and_leaves_no_timer() -> None:
    loop = asyncio.get_running_loop()
    never: asyncio.Future[None] = loop.create_future()
    start = loop.time()
    with pytest.raises(TimeoutError):
        await _wait_until(never, start + 0.05)
    assert loop.time() - start >= 0.05  # never early (at most 1/8 of the delay late)
    done: asyncio.Future[None] = loop.create_future()
    loop.call_soon(done.set_result, None)
    await _wait_until(done, loop.time() + 10.0)
    assert len(timer_wheel(loop)) == 0


async def test_closed_connections_leave_no_timer_handle_behind() -> None:
    loop = asyncio.get_running_loop()
    if not type(loop).__module__.startswith("asyncio"):
        pytest.skip("counts asyncio's own timer handles")
    # A timer due before the close bounds (as a busy node always has one, e.g. the
    # keepalive wheel's): asyncio drops a cancelled handle only once it is first due.
    blocker = loop.call_later(20.0, lambda: None)
    try:
        transport = TcpTransport(TcpOptions(close_timeout=30.0))
        pairs = [await open_pair(transport, LOCAL) for _ in range(20)]
        before = _pending_timer_handles()  # (the dials' own bounds are counted here)
        start = loop.time()
        await asyncio.gather(*(c.close() for pair in pairs for c in pair))
        for a, b in pairs:
            await dispose(a, b)
        # The wheel holds one loop handle per slot (a second wide at this delay), not one
        # per connection (40 here); the linger waits (a quarter of a second) leave theirs
        # briefly.  Closes spread over more seconds (a loaded machine: up to ten) touch
        # a slot per second, and a slot's cancelled handle stays in asyncio's heap until
        # it is due: so one more per second the closes took.
        slots = 4 + math.ceil(loop.time() - start)
        assert slots < 20, "the closes took too long to tell slots from connections"
        async with asyncio.timeout(5):
            while _pending_timer_handles() > before + slots:
                await asyncio.sleep(0.05)
    finally:
        blocker.cancel()
    assert len(timer_wheel(loop)) == 0
