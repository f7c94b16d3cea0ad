"""Small request/response exchanges on a loopback QUIC connection: nothing holds their
packets back (no pacing on loopback) and the server's ACKs ride with its replies."""

from __future__ import annotations

import asyncio
from typing import Any

from .conftest import quic_pair

EXCHANGES = 40


async def _confirmed(*sessions: Any) -> None:
    """Wait (bounded) until both ends switched to loopback datagrams."""
    for _ in range(500):
        if not any(s._grow_datagrams for s in sessions):
            return
        await asyncio.sleep(0.01)
    raise AssertionError("handshake never confirmed on both sides")


async def _exchanges(transports: Any, pause: float, watch: Any = None) -> list[int]:
    server, client = transports(), transports()
    conn, accepted = await quic_pair(server, client)
    ours, theirs = conn.muxed, accepted.muxed
    await _confirmed(ours, theirs)
    sent: list[int] = []
    endpoint = theirs.endpoint
    stock = endpoint.send_many

    def counting(datagrams: list[tuple[bytes, Any]]) -> None:
        sent.extend(len(d) for d, _ in datagrams)
        stock(datagrams)

    endpoint.send_many = counting  # type: ignore[method-assign]
    out = await ours.open_stream()
    await out.write(b"r" * 40)
    inbound = await theirs.accept_stream()
    assert await inbound.read() == b"r" * 40
    sent.clear()
    async with asyncio.timeout(10):
        for _ in range(EXCHANGES):
            await inbound.write(b"a" * 40)
            assert await out.read() == b"a" * 40
            if watch is not None:
                watch(ours, theirs)
            await asyncio.sleep(pause)
            await out.write(b"r" * 40)
            assert await inbound.read() == b"r" * 40
    endpoint.send_many = stock  # type: ignore[method-assign]
    return sent


async def test_loopback_exchanges_are_not_paced(transports):
    held: list[float] = []

    def watch(*sessions: Any) -> None:
        for s in sessions:
            if s.quic._pacing_at is not None:
                held.append(s.quic._pacing_at)

    await _exchanges(transports, 0, watch)
    assert not held  # stock aioquic's pacer held such packets back for milliseconds
    # (An aioquic that renamed its pacer attribute would pace again: caught here.)


async def test_server_acks_ride_with_its_replies(transports):
    # Each round: the server replies at once (its ACK of the request is then still
    # delayed by aioquic's 1 ms), the client pauses 3 ms.  Without the ACK riding
    # along, the server would send an ACK-only packet per round as well.
    sent = await _exchanges(transports, 0.003)
    assert len(sent) <= EXCHANGES + 5, sent
