"""Fixtures for host-level tests: real hosts, by default over the in-memory native
transport of :mod:`p2pkit.testing.memory_muxed` (no sockets, no plugins)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from p2pkit.builder import HostBuilder
from p2pkit.host import Host
from p2pkit.testing.memory_muxed import memory_registry
from tests.hosts import host_starter

HostFactory = Callable[..., Awaitable[Host]]


@pytest.fixture
async def make_host() -> AsyncIterator[HostFactory]:
    """Build and start hosts; all are stopped at teardown.

    ``await make_host(transport="memory", security=None, muxer=None, listen=True, **options)``:
    over ``memory`` nothing is upgraded (no security protocol or muxer unless named);
    ``transport="tcp"`` gets plaintext + yamux unless named.
    """
    async with host_starter() as start:

        async def factory(
            security: str | list[str] | None = None,
            muxer: str | list[str] | None = None,
            listen: bool = True,
            transport: str = "memory",
            **options: Any,
        ) -> Host:
            b = HostBuilder(memory_registry())
            if transport == "tcp":
                security = security or "plaintext"
                muxer = muxer or "yamux"
            for s in [security] if isinstance(security, str) else security or []:
                b.security(s)
            for m in [muxer] if isinstance(muxer, str) else muxer or []:
                b.muxer(m)
            if not security:
                options.setdefault("security", [])
            if not muxer:
                options.setdefault("muxers", [])
            b.transport(transport)
            if listen:
                b.listen("/ip4/127.0.0.1/tcp/0" if transport == "tcp" else "/memory/0")
            return await start(b, **options)

        yield factory
