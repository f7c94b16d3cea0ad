"""Fixtures shared by the WebSocket tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from p2pkit.builder import HostBuilder
from p2pkit.host import Host
from tests.hosts import host_starter
from tests.tcp.conftest import blackhole_v4, blackhole_v6
from tests.websocket.certs import CertFiles, make_certs

__all__ = ["blackhole_v4", "blackhole_v6"]


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> CertFiles:
    return make_certs(Path(tmp_path_factory.mktemp("ws-certs")))


@pytest.fixture
async def make_ws_host(certs: CertFiles) -> AsyncIterator[Callable[..., Awaitable[Host]]]:
    """Build and start hosts with the websocket (and TCP) transport; stopped at teardown.

    ``listen``: multiaddrs to listen on; the websocket options carry the test
    certificate and trust the test CA, so /tls/ws works both ways.
    """
    async with host_starter() as start:

        async def factory(
            security: str = "noise",
            muxer: str = "yamux",
            listen: tuple[str, ...] = ("/ip4/127.0.0.1/tcp/0/ws",),
            **options: Any,
        ) -> Host:
            b = HostBuilder().security(security).muxer(muxer).transport("tcp")
            b.transport(
                "websocket",
                cert_file=str(certs.cert_file),
                key_file=str(certs.key_file),
                ca_file=str(certs.ca_file),
            )
            for addr in listen:
                b.listen(addr)
            return await start(b, **options)

        yield factory
