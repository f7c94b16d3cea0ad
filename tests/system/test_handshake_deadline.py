"""The upgrader owns the handshake deadline: security plugins run no timer of their own
unless their options set one (core README, "Configuration")."""

from __future__ import annotations

import asyncio

import pytest
from multiaddr import Multiaddr

from p2pkit.abc import RawConnection
from p2pkit.crypto import generate_private_key
from p2pkit.errors import HandshakeTimeout
from p2pkit.multistream import select_inbound
from p2pkit.upgrader import Upgrader
from p2pkit_noise import NoiseOptions, NoiseSecurity
from p2pkit_tcp import TcpTransport
from p2pkit_tls import TlsOptions
from p2pkit_yamux import YamuxMuxer, YamuxOptions


async def test_upgrader_deadline_bounds_the_noise_handshake() -> None:
    """Noise runs no timer of its own by default: the upgrader's deadline ends a peer
    that goes silent in the middle of the handshake, and the socket is reset."""
    assert NoiseOptions().handshake_timeout is None and TlsOptions().handshake_timeout is None
    accepted: asyncio.Queue[RawConnection] = asyncio.Queue()
    transport = TcpTransport()
    listener = await transport.listen(Multiaddr("/ip4/127.0.0.1/tcp/0"), accepted.put_nowait)
    try:
        raw = await transport.dial(listener.addrs[0], timeout=5.0)
        server_raw = await asyncio.wait_for(accepted.get(), 5.0)
        # The peer agrees on /noise, then never answers the first handshake message.
        agree = asyncio.ensure_future(select_inbound(server_raw, ["/noise"], timeout=5.0))
        security = NoiseSecurity(generate_private_key("ed25519"))
        upgrader = Upgrader([security], [YamuxMuxer(YamuxOptions())], timeout=0.3)
        loop = asyncio.get_running_loop()
        start = loop.time()
        with pytest.raises(HandshakeTimeout, match=r"upgrade did not finish in 0\.3 s"):
            await upgrader.upgrade_outbound(raw, None)
        assert loop.time() - start < 3.0
        assert await asyncio.wait_for(agree, 5.0) == "/noise"
        server_raw.reset()
    finally:
        await listener.close()
