"""Fixtures shared by the TCP tests."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest
from multiaddr import Multiaddr

from p2pkit.builder import HostBuilder
from p2pkit.host import Host
from tests.hosts import host_starter


def _blackhole(family: socket.AddressFamily, host: str) -> Iterator[Multiaddr]:
    """A listening socket that never accepts, with its accept queue already full.

    Linux drops SYNs to a listener whose accept queue is full, so a dial to it hangs
    until it times out: a real, local "unreachable" address with no firewall rules.
    """
    srv = socket.socket(family, socket.SOCK_STREAM)
    filler = socket.socket(family, socket.SOCK_STREAM)
    try:
        srv.bind((host, 0))
        srv.listen(0)  # queue of one
        port = srv.getsockname()[1]
        filler.settimeout(5)
        filler.connect((host, port))  # takes the only slot
        kind = "ip4" if family == socket.AF_INET else "ip6"
        yield Multiaddr(f"/{kind}/{host}/tcp/{port}")
    finally:
        filler.close()
        srv.close()


@pytest.fixture
def blackhole_v4() -> Iterator[Multiaddr]:
    yield from _blackhole(socket.AF_INET, "127.0.0.1")


@pytest.fixture
def blackhole_v6() -> Iterator[Multiaddr]:
    yield from _blackhole(socket.AF_INET6, "::1")


@pytest.fixture
async def make_host() -> AsyncIterator[Callable[..., Awaitable[Host]]]:
    """Build and start TCP hosts (plaintext + yamux unless named); stopped at teardown."""
    async with host_starter() as start:

        async def factory(
            security: str = "plaintext", muxer: str = "yamux", listen: bool = True, **options: Any
        ) -> Host:
            b = HostBuilder().security(security).muxer(muxer).transport("tcp")
            if listen:
                b.listen("/ip4/127.0.0.1/tcp/0")
            return await start(b, **options)

        yield factory
