"""Muxer suite scenarios: load.

The stress matrix (streams x messages, echoed), both ends opening streams at once, a
slow reader that must not stall other streams, a large transfer checked by hash.
"""

from __future__ import annotations

import asyncio
import hashlib
import os

from p2pkit.abc import MuxedConnection, MuxedStream
from p2pkit.testing.muxer_base import (
    STEP_TIMEOUT,
    MiB,
    MuxerSuiteBase,
    Sessions,
    connected_stream,
    echo,
    read_all,
)

__all__ = ["LoadScenarios"]


class LoadScenarios(MuxerSuiteBase):
    """Many streams, many messages, many bytes."""

    async def test_stress_matrix(self, sessions: Sessions) -> None:
        opener, acceptor = sessions
        msg = self.stress_message
        for n_streams, n_msgs in self.stress_matrix:
            async with asyncio.timeout(STEP_TIMEOUT):
                await self._stress(opener, acceptor, n_streams, n_msgs, msg)

    async def _stress(
        self,
        opener: MuxedConnection,
        acceptor: MuxedConnection,
        n_streams: int,
        n_msgs: int,
        msg: bytes,
    ) -> None:
        handlers: list[asyncio.Task[None]] = []

        async def accept_loop() -> None:
            for _ in range(n_streams):
                stream = await acceptor.accept_stream()
                handlers.append(asyncio.create_task(echo(stream)))

        async def client() -> None:
            stream = await opener.open_stream()
            expected = msg * n_msgs

            async def send() -> None:
                for _ in range(n_msgs):
                    await stream.write(msg)
                await stream.close_write()

            sender = asyncio.create_task(send())
            got = await read_all(stream)
            await sender
            assert got == expected, f"{n_streams}x{n_msgs}: echo mismatch"

        acceptor_task = asyncio.create_task(accept_loop())
        await asyncio.gather(*(client() for _ in range(n_streams)))
        await acceptor_task
        await asyncio.gather(*handlers)

    async def test_both_sides_open_at_once(self, sessions: Sessions) -> None:
        """Streams opened by both ends at the same time never collide or cross."""
        a, b = sessions
        n = 50

        async def serve(session: MuxedConnection, tasks: list[asyncio.Task[None]]) -> None:
            for _ in range(n):
                tasks.append(asyncio.create_task(echo(await session.accept_stream())))

        async def client(session: MuxedConnection, tag: bytes) -> None:
            stream = await session.open_stream()
            msg = tag + str(id(stream)).encode()
            await stream.write(msg)
            await stream.close_write()
            assert await read_all(stream) == msg

        async with asyncio.timeout(STEP_TIMEOUT):
            echoes_a: list[asyncio.Task[None]] = []
            echoes_b: list[asyncio.Task[None]] = []
            servers = [
                asyncio.create_task(serve(a, echoes_a)),
                asyncio.create_task(serve(b, echoes_b)),
            ]
            await asyncio.gather(
                *(client(a, b"from-a-") for _ in range(n)),
                *(client(b, b"from-b-") for _ in range(n)),
            )
            await asyncio.gather(*servers)
            await asyncio.gather(*echoes_a, *echoes_b)

    async def test_slow_reader_does_not_stall_others(self, sessions: Sessions) -> None:
        opener, acceptor = sessions
        slow_payload = os.urandom(self.slow_reader_bytes)
        fast_payload = os.urandom(2 * MiB)
        async with asyncio.timeout(STEP_TIMEOUT):
            slow_out, slow_in = await connected_stream(opener, acceptor)
            fast_out, fast_in = await connected_stream(opener, acceptor)

            async def send(stream: MuxedStream, data: bytes) -> None:
                await stream.write(data)
                await stream.close_write()

            slow_writer = asyncio.create_task(send(slow_out, slow_payload))
            await asyncio.sleep(0.05)  # the slow stream fills its window / buffers
            fast_writer = asyncio.create_task(send(fast_out, fast_payload))
            # nobody reads slow_in: the fast stream must still complete
            assert await read_all(fast_in) == fast_payload
            await fast_writer
            # now drain the slow one: everything arrives intact
            assert await read_all(slow_in) == slow_payload
            await slow_writer

    async def test_large_transfer_checked_by_hash(self, sessions: Sessions) -> None:
        opener, acceptor = sessions
        size = self.large_transfer_size
        block = os.urandom(MiB)
        async with asyncio.timeout(max(STEP_TIMEOUT, size / (2 * MiB))):
            out, inc = await connected_stream(opener, acceptor)

            async def send() -> str:
                h = hashlib.sha256()
                for i in range(size // MiB):
                    chunk = block[i % 7 :] + block[: i % 7]
                    h.update(chunk)
                    await out.write(chunk)
                await out.close_write()
                return h.hexdigest()

            sender = asyncio.create_task(send())
            h = hashlib.sha256()
            got = 0
            while chunk := await inc.read():
                h.update(chunk)
                got += len(chunk)
            assert got == size // MiB * MiB
            assert h.hexdigest() == await sender
