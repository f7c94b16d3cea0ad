"""Receive buffers: lent per read, sized by recent reads, from a bounded pool.

The socket-level behaviour (a real TCP connection that receives little or a lot) is in
``tests/tcp/test_tcp_memory.py``; here the sizing rules and the pool's bounds, driven
exactly as ``get_buffer`` / ``buffer_updated`` drive them.
"""

from __future__ import annotations

import asyncio

from p2pkit.bufpool import (
    MIN_SIZE,
    SHRINK_AFTER,
    TRIM_POSTPONE_MAX,
    BufferPool,
    ConnectionTally,
    ReceiveBuffer,
    thread_pool,
)

MAX = 1 << 20


def read(rx: ReceiveBuffer, nbytes: int) -> int:
    """One socket read of ``nbytes`` (capped by the lent buffer); returns the size read."""
    buf = rx.get()
    n = min(nbytes, len(buf))
    buf[:n] = b"\x01" * n
    assert bytes(rx.filled(n)) == b"\x01" * n
    rx.done(n)
    return n


def test_nothing_lent_before_the_first_read_nor_between_reads() -> None:
    rx = ReceiveBuffer(MAX, BufferPool())
    assert rx.lends == 0 and rx.held == 0 and rx.size == MIN_SIZE
    rx.get()
    assert rx.held == MIN_SIZE
    rx.done(10)
    assert rx.held == 0 and rx.lends == 1


def test_a_connection_that_receives_little_keeps_a_small_buffer() -> None:
    rx = ReceiveBuffer(MAX, BufferPool())
    for n in [100, 1500, 4000, 12, 4095] * 20:
        read(rx, n)
        assert rx.size == MIN_SIZE


def test_filled_reads_grow_to_the_maximum_and_quiet_reads_shrink_back() -> None:
    rx = ReceiveBuffer(MAX, BufferPool())
    sizes = []
    while rx.size < MAX:
        sizes.append(read(rx, MAX))  # every read fills the buffer
        assert len(sizes) < 32
    assert sizes == [MIN_SIZE << 2 * i for i in range(len(sizes))]
    assert read(rx, MAX) == MAX and rx.size == MAX  # capped
    # A read that uses more than an eighth keeps the size; quiet reads shrink it.
    read(rx, MAX // 7)
    assert rx.size == MAX
    for _ in range(SHRINK_AFTER):
        read(rx, 100)
    assert rx.size == MAX // 2
    reads = 0
    while rx.size > MIN_SIZE:
        read(rx, 100)
        reads += 1
        assert reads < 200
    assert rx.size == MIN_SIZE and rx.held == 0


def test_interrupted_small_reads_do_not_shrink() -> None:
    rx = ReceiveBuffer(MAX, BufferPool())
    while rx.size < 64 * 1024:
        read(rx, MAX)
    for _ in range(10):
        for _ in range(SHRINK_AFTER - 1):
            read(rx, 10)
        read(rx, rx.size // 4)  # a busy read in between resets the count
    assert rx.size == 64 * 1024


def test_a_read_that_found_nothing_keeps_its_buffer_until_the_next_one() -> None:
    """asyncio calls get_buffer, then the read may find nothing (EAGAIN): the next
    get_buffer gets the same buffer, and release() (EOF, loss) gives it back."""
    pool = BufferPool()
    rx = ReceiveBuffer(MAX, pool)
    first = rx.get()
    assert rx.get() is first and rx.lends == 1
    rx.release()
    assert rx.held == 0 and pool.held_count == 1
    rx.release()  # idempotent
    assert pool.held_count == 1


def test_a_busy_connection_reuses_pooled_buffers() -> None:
    pool = BufferPool()
    rx = ReceiveBuffer(64 * 1024, pool)
    while rx.size < 64 * 1024:
        read(rx, MAX)
    first = rx.get()
    rx.done(len(first))
    for _ in range(10):
        assert rx.get() is first  # the same buffer every read: no allocation
        rx.done(len(first))


def test_small_max_size() -> None:
    rx = ReceiveBuffer(1024, BufferPool())
    assert rx.size == 1024
    read(rx, 5000)
    assert rx.size == 1024
    read(rx, 1)
    assert rx.size == 1024


def test_the_pool_is_bounded_in_count_and_bytes() -> None:
    pool = BufferPool(max_bytes=1 << 20, max_per_size=3)
    for _ in range(10):
        pool.give(memoryview(bytearray(4096)))
    assert pool.held_count == 3 and pool.held_bytes == 3 * 4096
    for size in (256 * 1024, 512 * 1024, 512 * 1024, 256 * 1024):
        pool.give(memoryview(bytearray(size)))
    assert pool.held_bytes <= 1 << 20
    # One buffer larger than max_bytes is kept only when the pool holds nothing else.
    pool.give(memoryview(bytearray(2 << 20)))
    assert pool.held_bytes <= 1 << 20
    pool.clear()
    assert pool.held_count == 0 and pool.held_bytes == 0
    pool.give(memoryview(bytearray(2 << 20)))
    assert pool.held_count == 1
    assert len(pool.take(2 << 20)) == 2 << 20 and pool.held_count == 0


def test_many_connections_share_a_thread_pool_bounded_however_many_read() -> None:
    pool = thread_pool()
    conns = [ReceiveBuffer(MAX) for _ in range(200)]
    for _ in range(12):
        for rx in conns:
            read(rx, MAX)
    assert all(rx.held == 0 for rx in conns)
    assert pool.held_bytes <= pool.max_bytes
    assert pool.held_count <= pool.max_per_size * 9  # sizes MIN_SIZE .. 1 MiB


def test_the_heap_trim_is_looked_up_before_the_first_connection() -> None:
    """What loading ctypes allocates lives for good: loaded at the first trim, after a
    burst of connections closed, it would pin their memory pools."""
    tally = ConnectionTally()
    assert tally._trim is False  # nothing loaded by merely creating a tally
    tally.opened()
    assert tally._trim is not False
    tally.closed()


async def test_memory_is_given_back_once_per_halving_of_the_connections() -> None:
    tally = ConnectionTally(min_drop=4, delay=0.01)
    for _ in range(20):
        tally.opened()
    for _ in range(9):
        tally.closed()
    assert tally.live == 11 and tally.trims == 0
    tally.closed()  # 10 of 20: a trim is scheduled (one, however many close meanwhile)
    for _ in range(6):
        tally.closed()
    async with asyncio.timeout(5):
        while tally.trims < 1:
            await asyncio.sleep(0.01)
    assert tally.trims == 1 and tally.live == 4
    for _ in range(2):  # peak now 5 (the last halving): 5 -> 2 is fewer than min_drop
        tally.closed()
    await asyncio.sleep(0.05)
    assert tally.trims == 1
    tally.trim()
    assert tally.trims == 2


async def test_the_trim_waits_until_connections_stop_closing_in_numbers() -> None:
    tally = ConnectionTally(min_drop=4, delay=0.05)
    for _ in range(100):
        tally.opened()
    for _ in range(50):  # a halving: the trim is scheduled
        tally.closed()
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(5):
        # Still closing in numbers (4 per delay): the trim is put off each time.
        for _ in range(4):
            deadline = loop.time() + 0.05
            for _ in range(4):
                tally.closed()
            assert tally.trims == 0
            while loop.time() < deadline:
                await asyncio.sleep(0.01)
        while tally.trims < 1:  # quiet now: it runs
            await asyncio.sleep(0.01)
    assert tally.trims == 1 and tally.live == 34


async def test_steady_churn_puts_the_trim_off_a_bounded_number_of_times() -> None:
    tally = ConnectionTally(min_drop=1, delay=0.01)
    for _ in range(1000):
        tally.opened()
    for _ in range(500):  # a halving: the trim is scheduled
        tally.closed()
    async with asyncio.timeout(5):
        while tally.trims < 1:  # a close every half delay: never quiet
            tally.closed()
            await asyncio.sleep(0.005)
    assert tally.trims == 1 and tally.live > 0
    assert tally._postponed == TRIM_POSTPONE_MAX
