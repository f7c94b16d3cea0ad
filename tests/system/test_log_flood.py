"""A hostile peer's flood must not become a log flood.

One listener with the default stack (TCP + Noise + Yamux) logs at DEBUG, everything
kept; the attacks of ``hostile.py`` run against it in the same process over loopback:
yamux pings never read, new yamux streams that never negotiate, random bytes on fresh
connections, oversize frames.  Thousands of frames and dozens of failed connections
must produce a handful of lines: nothing logs per frame, and what a peer can trigger
again and again (a failed handshake, a failed stream negotiation) is collapsed by
``p2pkit.logs.RepeatLimiter``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator

import pytest

from p2pkit.config import HostBuilder
from p2pkit.host import Host

from . import hostile

SECONDS = 1.0
#: Lines one message template may produce in the whole run: the first of its window, and
#: a few variants (one key per exception type where the key includes it).
PER_TEMPLATE = 4


@pytest.fixture
def records() -> Iterator[list[logging.LogRecord]]:
    kept: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            kept.append(record)

    logger = logging.getLogger("p2pkit")
    handler, level = Keep(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield kept
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


@pytest.fixture
async def listener() -> AsyncIterator[Host]:
    host = (
        HostBuilder()
        .listen("/ip4/127.0.0.1/tcp/0")
        .transport("tcp")
        .security("noise")
        .muxer("yamux")
        .option(enable_echo=True)
        .build()
    )
    async with host:
        yield host


async def test_floods_produce_a_bounded_number_of_lines(
    listener: Host, records: list[logging.LogRecord]
) -> None:
    target = str(listener.addrs_with_peer_id[0])
    tcp = listener.listen_addrs[0]
    ip, port = tcp.value_for_protocol("ip4"), int(tcp.value_for_protocol("tcp"))
    frames = 0
    for attack in (hostile.ping_flood, hostile.syn_flood):
        result = await attack(target, time.monotonic() + SECONDS)
        frames += result["frames"]
    await hostile.oversize(target, time.monotonic() + SECONDS)
    rounds = (await hostile.garbage(ip, port, time.monotonic() + SECONDS))["rounds"]
    await asyncio.sleep(0.2)  # the listener finishes with what is in flight
    templates = Counter((r.name, str(r.msg)) for r in records)
    lines = "\n".join(f"{r.name}: {r.getMessage()}" for r in records)
    assert frames > 1000 and rounds > 3, (frames, rounds)
    assert max(templates.values(), default=0) <= PER_TEMPLATE, lines
    assert len(records) < 40, lines
