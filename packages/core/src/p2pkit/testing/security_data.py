"""Security suite scenarios: data over a secured connection.

A 10,000-chunk echo checked by hash (both directions), push mode (bytes buffered
before ``start_push`` delivered first, nothing while paused, all of it after resuming),
``write_many`` order while the transport holds many unsent buffers, half-close.
"""

from __future__ import annotations

import asyncio
import hashlib
import random

import pytest

from p2pkit.abc import RawConnection
from p2pkit.testing.security_base import (
    STEP_TIMEOUT,
    PushCollector,
    SecurityFactory,
    SecuritySuiteBase,
    _close_all,
    _read_until_eof,
)

__all__ = ["DataScenarios"]


class DataScenarios(SecuritySuiteBase):
    """Bytes must arrive complete and in order, in pull and push mode."""

    @pytest.mark.parametrize("writer", ["dialer", "listener"])
    async def test_large_echo(
        self,
        make_security: SecurityFactory,
        tcp_pair: tuple[RawConnection, RawConnection],
        writer: str,
    ) -> None:
        """10,000 chunks of random sizes (a few over 64 KiB, so frames split) echoed back."""
        client, server = await self.secure_pair(make_security, tcp_pair)
        a, b = (client, server) if writer == "dialer" else (server, client)
        rng = random.Random(1234)
        sizes = [_chunk_size(rng) for _ in range(10_000)]
        total = sum(sizes)
        blob = rng.randbytes(max(sizes))

        async def echo() -> None:
            while True:
                chunk = await asyncio.wait_for(b.read(), STEP_TIMEOUT)
                if not chunk:
                    await b.close_write()
                    return
                await b.write(chunk)

        async def send() -> None:
            for i, n in enumerate(sizes):
                await a.write(blob[i % 7 : i % 7 + n] if n + 7 <= len(blob) else blob[:n])
            await a.close_write()

        expected = hashlib.sha256()
        for i, n in enumerate(sizes):
            expected.update(blob[i % 7 : i % 7 + n] if n + 7 <= len(blob) else blob[:n])
        try:
            echo_task = asyncio.ensure_future(echo())
            send_task = asyncio.ensure_future(send())
            got = hashlib.sha256()
            received = 0
            while True:
                chunk = await asyncio.wait_for(a.read(), STEP_TIMEOUT)
                if not chunk:
                    break
                got.update(chunk)
                received += len(chunk)
            await asyncio.wait_for(asyncio.gather(echo_task, send_task), STEP_TIMEOUT)
            assert received == total
            assert got.digest() == expected.digest()
        finally:
            await _close_all(client, server)

    @pytest.mark.parametrize("pusher", ["dialer", "listener"])
    async def test_push_mode_delivers_everything(
        self,
        make_security: SecurityFactory,
        tcp_pair: tuple[RawConnection, RawConnection],
        pusher: str,
    ) -> None:
        client, server = await self.secure_pair(make_security, tcp_pair)
        reader, writer = (client, server) if pusher == "dialer" else (server, client)
        data = random.Random(7).randbytes(3_000_000)
        try:
            # Some bytes arrive before push mode starts: they must be delivered first.
            writer.write_nowait(data[:1000])
            await asyncio.wait_for(reader.readexactly(10), STEP_TIMEOUT)
            collector = PushCollector()
            reader.start_push(collector)
            await collector.wait_for_bytes(990, "bytes buffered before push")
            assert bytes(collector.data) == data[10:1000]
            # Paused: the next bytes reach the reader's side but are not delivered.
            reader.pause_reading()
            writer.write_nowait(data[1000:201_000])
            await asyncio.wait_for(writer.drain(), STEP_TIMEOUT)
            await asyncio.sleep(0.1)  # proving an absence needs some time to pass
            assert len(collector.data) == 990, (
                f"{len(collector.data) - 990} bytes delivered while reading was paused"
            )
            reader.resume_reading()
            await collector.wait_for_bytes(200_990, "bytes held back while paused")
            assert bytes(collector.data) == data[10:201_000]
            pos = 201_000
            while pos < len(data):
                n = min(len(data) - pos, 100_000)
                writer.write_nowait(data[pos : pos + n])
                pos += n
                if writer.write_paused:
                    await asyncio.wait_for(writer.drain(), STEP_TIMEOUT)
            await writer.close_write()
            await asyncio.wait_for(collector.eof, STEP_TIMEOUT)
            assert bytes(collector.data) == data[10:]
            assert not collector.lost.done() or collector.lost.result() is None
        finally:
            await _close_all(client, server)

    async def test_write_many_keeps_order_while_queued(
        self,
        make_security: SecurityFactory,
        tcp_pair: tuple[RawConnection, RawConnection],
    ) -> None:
        """write_many() parts arrive in order, also when the writer ignores backpressure
        and the transport holds many unsent buffers (an encrypting channel must not reuse
        memory a transport still references)."""
        client, server = await self.secure_pair(make_security, tcp_pair)
        rng = random.Random(11)
        batches = [
            [rng.randbytes(12), rng.randbytes(rng.randrange(100_000, 400_000)), b""]
            for _ in range(30)
        ]
        expected = b"".join(b"".join(parts) for parts in batches)
        try:
            for parts in batches:
                client.write_many(parts)  # no drain: everything queues up
            await client.close_write()
            got = bytearray()
            while True:
                chunk = await asyncio.wait_for(server.read(), STEP_TIMEOUT)
                if not chunk:
                    break
                got += chunk
            assert len(got) == len(expected)
            assert hashlib.sha256(got).digest() == hashlib.sha256(expected).digest()
        finally:
            await _close_all(client, server)

    async def test_half_close(
        self, make_security: SecurityFactory, tcp_pair: tuple[RawConnection, RawConnection]
    ) -> None:
        client, server = await self.secure_pair(make_security, tcp_pair)
        try:
            await client.write(b"request")
            await client.close_write()
            assert await _read_until_eof(server) == b"request"
            # The other direction still works after the client's half-close.
            await server.write(b"response")
            await server.close_write()
            assert await _read_until_eof(client) == b"response"
        finally:
            await _close_all(client, server)


def _chunk_size(rng: random.Random) -> int:
    r = rng.random()
    if r < 0.02:
        return rng.randint(60_000, 140_000)
    if r < 0.5:
        return rng.randint(1, 100)
    return rng.randint(1, 2_000)
