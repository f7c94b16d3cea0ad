"""Fixtures for host-level tests: real hosts on loopback TCP."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from p2pkit.builder import HostBuilder
from p2pkit.host import Host

HostFactory = Callable[..., Awaitable[Host]]


@pytest.fixture
async def make_host() -> AsyncIterator[HostFactory]:
    """Build and start hosts; all are stopped at teardown.

    ``await make_host(security="plaintext", muxer="yamux", listen=True, **options)``
    """
    hosts: list[Host] = []

    async def factory(
        security: str | list[str] = "plaintext",
        muxer: str | list[str] = "yamux",
        listen: bool = True,
        **options: Any,
    ) -> Host:
        b = HostBuilder()
        for s in [security] if isinstance(security, str) else security:
            b.security(s)
        for m in [muxer] if isinstance(muxer, str) else muxer:
            b.muxer(m)
        b.transport("tcp")
        if listen:
            b.listen("/ip4/127.0.0.1/tcp/0")
        b.option(enable_echo=True, enable_perf=True, **options)
        host = b.build()
        hosts.append(host)
        return await host.start()

    yield factory
    for h in hosts:
        await h.stop()
