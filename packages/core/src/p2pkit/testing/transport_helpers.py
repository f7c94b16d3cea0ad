"""Helpers of the transport and channel suites (public: handy in a plugin's own tests).

:data:`STEP` bounds every wait; :class:`Collector` is a push-mode receiver that records
what it gets; :func:`read_all`, :func:`read_n`, :func:`dispose` and :func:`open_pair`
read, tear down and connect channels.  The underscored helpers (deterministic payloads,
a recording connection handler) are shared by the suite modules only.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable

from multiaddr import Multiaddr

from p2pkit.abc import Channel, RawConnection, Transport

__all__ = ["STEP", "Collector", "dispose", "open_pair", "read_all", "read_n"]

STEP = 10.0
"""Upper bound (seconds) of any single wait in the suites."""


class Collector:
    """A push-mode :class:`~p2pkit.abc.Receiver` that records what it gets."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.eof = False
        self.eof_count = 0
        self.lost: list[BaseException | None] = []
        self._changed = asyncio.Event()

    def data_received(self, data: memoryview) -> None:
        self.data += data  # copy: ``data`` is only valid during the call
        self._changed.set()

    def eof_received(self) -> None:
        self.eof = True
        self.eof_count += 1
        self._changed.set()

    def connection_lost(self, exc: BaseException | None) -> None:
        self.lost.append(exc)
        self._changed.set()

    async def wait_for(self, predicate: Callable[[Collector], bool], what: str) -> None:
        """Wait (at most :data:`STEP`) until ``predicate(self)`` holds."""
        try:
            async with asyncio.timeout(STEP):
                while not predicate(self):
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            raise AssertionError(
                f"timed out waiting for {what} (have {len(self.data)} bytes, "
                f"eof={self.eof}, lost={self.lost})"
            ) from None


async def read_all(chan: Channel, limit: int = 64 << 20) -> bytes:
    """Read until EOF (bounded in size and in time)."""
    parts: list[bytes] = []
    got = 0
    async with asyncio.timeout(STEP):
        while True:
            chunk = await chan.read()
            if not chunk:
                return b"".join(parts)
            parts.append(chunk)
            got += len(chunk)
            if got > limit:
                raise AssertionError(f"more than {limit} bytes before EOF")


async def read_n(chan: Channel, n: int) -> bytes:
    async with asyncio.timeout(STEP):
        return await chan.readexactly(n)


async def dispose(*chans: Channel) -> None:
    """Tear connections down without waiting on peers (reset), then let callbacks run."""
    for c in chans:
        c.reset()
    await asyncio.sleep(0.01)  # abort() closes sockets from a loop callback


async def open_pair(
    transport: Transport, listen_addr: Multiaddr
) -> tuple[RawConnection, RawConnection]:
    """Listen, dial the reported address, return ``(dialed, accepted)``; listener closed."""
    accepted: asyncio.Queue[RawConnection] = asyncio.Queue()
    listener = await transport.listen(listen_addr, accepted.put_nowait)
    try:
        async with asyncio.timeout(STEP):
            dialed = await transport.dial(listener.addrs[0])
            try:
                inbound = await accepted.get()
            except BaseException:
                dialed.reset()
                raise
    finally:
        await listener.close()
    return dialed, inbound


def _pattern(n: int, seed: int = 0) -> bytes:
    """``n`` deterministic pseudo-random bytes (so corruption and reordering show)."""
    out = bytearray()
    counter = 0
    while len(out) < n:
        out += hashlib.sha256(f"{seed}:{counter}".encode()).digest() * 64
        counter += 1
    return bytes(out[:n])


def _record(
    conns: list[RawConnection], queue: asyncio.Queue[RawConnection]
) -> Callable[[RawConnection], None]:
    """A connection handler that keeps every connection (for cleanup) and queues it."""

    def handler(conn: RawConnection) -> None:
        conns.append(conn)
        queue.put_nowait(conn)

    return handler
