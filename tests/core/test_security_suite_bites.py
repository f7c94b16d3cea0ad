"""The security suite's checks fail deliberately broken security protocols.

Each broken protocol is a real one (plaintext or Noise) with one bug; the suite's test
method, called directly over a real loopback TCP pair, must raise ``AssertionError``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from p2pkit.abc import RawConnection, SecureConnection
from p2pkit.crypto import PrivateKey
from p2pkit.errors import PeerIdMismatch
from p2pkit.peer import PeerId
from p2pkit.security.plaintext import PlaintextConnection, PlaintextOptions, PlaintextSecurity
from p2pkit.testing.memory import tcp_channel_pair
from p2pkit.testing.security_suite import SecuritySuite
from p2pkit_noise import NoiseOptions, NoiseSecurity


class _IgnoresPause(PlaintextConnection):
    def pause_reading(self) -> None:
        return None  # bug: push delivery goes on


class IgnoresPausePlaintext(PlaintextSecurity):
    async def _handshake(self, conn: RawConnection, expected: PeerId | None) -> SecureConnection:
        secured = await super()._handshake(conn, expected)
        secured.__class__ = _IgnoresPause
        return secured


class ClosesGracefullyPlaintext(PlaintextSecurity):
    """On a peer id mismatch, closes the connection cleanly instead of resetting it."""

    async def _handshake(self, conn: RawConnection, expected: PeerId | None) -> SecureConnection:
        await conn.write(self._exchange_message())
        peer, key = await self._read_exchange(conn)
        if expected is not None and peer != expected:
            await conn.close()  # bug: the peer sees a clean EOF
            raise PeerIdMismatch(expected, peer)
        return PlaintextConnection(conn, self.peer_id, peer, key)


def _plaintext(cls: type[PlaintextSecurity]) -> Any:
    def make(key: PrivateKey, *, handshake_timeout: float = 10.0) -> PlaintextSecurity:
        return cls(key, PlaintextOptions(handshake_timeout))

    return make


def _noise_without_early_muxer(key: PrivateKey, *, handshake_timeout: float = 10.0) -> Any:
    options = NoiseOptions(handshake_timeout=handshake_timeout, early_muxer_negotiation=False)
    return NoiseSecurity(key, options)


class _Suite(SecuritySuite):
    negotiates_early_muxer = True
    authenticates = False


async def _run(method: str, make: Any, **kwargs: Any) -> None:
    pair = await asyncio.wait_for(tcp_channel_pair(), 10)
    try:
        await getattr(_Suite(), method)(make, pair, **kwargs)
    finally:
        for conn in pair:
            conn.reset()
        await asyncio.sleep(0.01)


async def test_early_muxer_check_fails_a_protocol_that_never_negotiates():
    with pytest.raises(AssertionError, match="no early muxer negotiated"):
        await _run("test_early_muxer_both_sides_agree", _noise_without_early_muxer)


async def test_push_pause_check_fails_a_connection_that_ignores_pause():
    with pytest.raises(AssertionError, match="delivered while reading was paused"):
        await _run(
            "test_push_mode_delivers_everything",
            _plaintext(IgnoresPausePlaintext),
            pusher="dialer",
        )


async def test_mismatch_check_fails_a_graceful_close_instead_of_a_reset():
    with pytest.raises(AssertionError, match="clean EOF"):
        await _run("test_mitm_peer_id_mismatch", _plaintext(ClosesGracefullyPlaintext))


@pytest.mark.parametrize(
    ("method", "kwargs"),
    [
        ("test_push_mode_delivers_everything", {"pusher": "dialer"}),
        ("test_mitm_peer_id_mismatch", {}),
    ],
)
async def test_the_same_checks_pass_the_real_plaintext(method, kwargs):
    await _run(method, _plaintext(PlaintextSecurity), **kwargs)
