"""The host-starting half of the ``make_host`` fixtures (tests/core, tcp, quic, websocket).

Each folder's fixture decides how a host is configured; this starts it with the echo
and perf services on (what the tests drive traffic with) and stops every host it
started when the fixture is torn down, so no fixture repeats that bookkeeping.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from p2pkit.builder import HostBuilder
from p2pkit.host import Host

StartHost = Callable[..., Awaitable[Host]]
"""``await start(builder, **options)``: build with ``options``, start, return the host."""


@contextlib.asynccontextmanager
async def host_starter() -> AsyncIterator[StartHost]:
    """Yield ``start``; on exit, stop the hosts it started (in start order)."""
    hosts: list[Host] = []

    async def start(builder: HostBuilder, **options: Any) -> Host:
        builder.option(enable_echo=True, enable_perf=True, **options)
        host = builder.build()
        hosts.append(host)
        return await host.start()

    try:
        yield start
    finally:
        for host in hosts:
            await host.stop()
