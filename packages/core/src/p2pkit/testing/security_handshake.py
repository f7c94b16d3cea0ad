"""Security suite scenarios: successful handshakes.

Both roles with every identity key type over loopback TCP, the in-memory channel, a
dial without an expected peer id, and the early muxer both sides agree on (negotiated
when both offer the same list, unless ``negotiates_early_muxer`` is False).
"""

from __future__ import annotations

import asyncio

import pytest

from p2pkit.abc import RawConnection
from p2pkit.testing.memory import channel_pair
from p2pkit.testing.security_base import (
    KEY_TYPES,
    MUXERS,
    STEP_TIMEOUT,
    SecurityFactory,
    SecuritySuiteBase,
    _close_all,
    cached_key,
    peer_of,
)

__all__ = ["HandshakeScenarios"]


class HandshakeScenarios(SecuritySuiteBase):
    """Handshakes that must succeed, and what each side learns from them."""

    @pytest.mark.parametrize("role", ["dialer", "listener"])
    @pytest.mark.parametrize("key_type", KEY_TYPES)
    async def test_handshake_every_key_type(
        self,
        make_security: SecurityFactory,
        tcp_pair: tuple[RawConnection, RawConnection],
        key_type: str,
        role: str,
    ) -> None:
        if key_type not in self.key_types:
            pytest.skip(f"{key_type} identities not supported by this protocol")
        ck = cached_key(key_type, 0) if role == "dialer" else cached_key("ed25519", 0)
        sk = cached_key(key_type, 1) if role == "listener" else cached_key("ed25519", 1)
        client, server = await self.secure_pair(
            make_security, tcp_pair, client_key=ck, server_key=sk
        )
        try:
            self.check_identities(client, server, ck, sk, make_security(ck).protocol_id)
            await client.write(b"ping")
            assert await asyncio.wait_for(server.readexactly(4), STEP_TIMEOUT) == b"ping"
            await server.write(b"pong")
            assert await asyncio.wait_for(client.readexactly(4), STEP_TIMEOUT) == b"pong"
        finally:
            await _close_all(client, server)

    async def test_handshake_over_memory_channel(self, make_security: SecurityFactory) -> None:
        raw = channel_pair()
        try:
            client, server = await self.secure_pair(make_security, raw)
            self.check_identities(
                client,
                server,
                cached_key("ed25519", 0),
                cached_key("ed25519", 1),
                make_security(cached_key("ed25519", 0)).protocol_id,
            )
            await _close_all(client, server)
        finally:
            await _close_all(*raw)

    async def test_dial_without_expected_peer(
        self, make_security: SecurityFactory, tcp_pair: tuple[RawConnection, RawConnection]
    ) -> None:
        client, server = await self.secure_pair(make_security, tcp_pair, expected=None)
        try:
            assert client.remote_peer == peer_of(cached_key("ed25519", 1))
        finally:
            await _close_all(client, server)

    async def test_early_muxer_both_sides_agree(
        self, make_security: SecurityFactory, tcp_pair: tuple[RawConnection, RawConnection]
    ) -> None:
        client, server = await self.secure_pair(make_security, tcp_pair, muxers=MUXERS)
        try:
            assert client.early_muxer == server.early_muxer
            if self.negotiates_early_muxer:
                # Both offered the same list: its first entry is everyone's choice.
                assert client.early_muxer == MUXERS[0], (
                    f"no early muxer negotiated (got {client.early_muxer!r}); set "
                    "negotiates_early_muxer = False if the protocol cannot carry one"
                )
            else:
                assert client.early_muxer is None
        finally:
            await _close_all(client, server)
