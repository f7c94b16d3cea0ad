"""Security suite scenarios: handshakes that must fail.

Dialing an expected peer id of another key (PeerIdMismatch), impersonation with someone
else's public key (skipped when ``authenticates`` is False), handshake timeout against
a silent peer, random garbage then EOF, the peer resetting mid-handshake.  Every failure
must be a typed error and leave the connection closed.
"""

from __future__ import annotations

import asyncio
import random

import pytest

from p2pkit.abc import RawConnection, SecureConnection
from p2pkit.errors import (
    ConnectionClosed,
    HandshakeError,
    HandshakeTimeout,
    PeerIdMismatch,
    ProtocolError,
)
from p2pkit.testing.security_base import (
    STEP_TIMEOUT,
    Impostor,
    SecurityFactory,
    SecuritySuiteBase,
    _close_all,
    cached_key,
    peer_of,
)

__all__ = ["FailureScenarios"]


class FailureScenarios(SecuritySuiteBase):
    """Bad peers and silent ones: a typed error, the connection closed."""

    async def test_mitm_peer_id_mismatch(
        self, make_security: SecurityFactory, tcp_pair: tuple[RawConnection, RawConnection]
    ) -> None:
        """Dialing with the peer id of another key fails on the dialer and closes it."""
        other = peer_of(cached_key("ed25519", 2))
        client = make_security(cached_key("ed25519", 0))
        server = make_security(cached_key("ed25519", 1))
        out, inb = await asyncio.wait_for(
            asyncio.gather(
                client.secure_outbound(tcp_pair[0], other),
                server.secure_inbound(tcp_pair[1]),
                return_exceptions=True,
            ),
            STEP_TIMEOUT,
        )
        try:
            assert isinstance(out, PeerIdMismatch), out
            assert out.expected == other
            assert out.actual == peer_of(cached_key("ed25519", 1))
            assert tcp_pair[0].closed
            if isinstance(inb, SecureConnection):
                # The listener may have completed: the dialer's reset must end its
                # connection with a typed error, not a clean EOF (or a hang).
                ended = await asyncio.wait_for(_drain_until_error(inb), STEP_TIMEOUT)
                assert ended, "the listener saw a clean EOF after the dialer's reset"
        finally:
            await _close_all(*(x for x in (out, inb) if isinstance(x, SecureConnection)))

    @pytest.mark.parametrize("impostor", ["listener", "dialer"])
    async def test_impersonation_rejected(
        self,
        make_security: SecurityFactory,
        tcp_pair: tuple[RawConnection, RawConnection],
        impostor: str,
    ) -> None:
        """A peer presenting someone else's public key without its private key fails."""
        if not self.authenticates:
            pytest.skip("this protocol does not prove key possession")
        victim, attacker = cached_key("ed25519", 1), cached_key("ed25519", 2)
        fake = make_security(Impostor(victim, attacker), handshake_timeout=5.0)
        honest = make_security(cached_key("ed25519", 0), handshake_timeout=5.0)
        if impostor == "listener":
            coros = (
                honest.secure_outbound(tcp_pair[0], peer_of(victim)),
                fake.secure_inbound(tcp_pair[1]),
            )
        else:
            coros = (
                fake.secure_outbound(tcp_pair[0], None),
                honest.secure_inbound(tcp_pair[1]),
            )
        out, inb = await asyncio.wait_for(
            asyncio.gather(*coros, return_exceptions=True), STEP_TIMEOUT
        )
        try:
            honest_result = out if impostor == "listener" else inb
            assert isinstance(honest_result, (HandshakeError, ProtocolError)), honest_result
            assert tcp_pair[0 if impostor == "listener" else 1].closed
        finally:
            await _close_all(*(x for x in (out, inb) if isinstance(x, SecureConnection)))

    @pytest.mark.parametrize("silent", ["listener", "dialer"])
    async def test_handshake_timeout(
        self,
        make_security: SecurityFactory,
        tcp_pair: tuple[RawConnection, RawConnection],
        silent: str,
    ) -> None:
        sec = make_security(cached_key("ed25519", 0), handshake_timeout=0.3)
        loop = asyncio.get_running_loop()
        start = loop.time()
        with pytest.raises(HandshakeTimeout):
            if silent == "listener":
                await asyncio.wait_for(sec.secure_outbound(tcp_pair[0], None), STEP_TIMEOUT)
            else:
                await asyncio.wait_for(sec.secure_inbound(tcp_pair[1]), STEP_TIMEOUT)
        assert loop.time() - start < 5.0
        assert tcp_pair[0 if silent == "listener" else 1].closed

    @pytest.mark.parametrize("victim", ["listener", "dialer"])
    @pytest.mark.parametrize("seed", [1, 2, 3])
    async def test_garbage_input_raises_typed_error(
        self,
        make_security: SecurityFactory,
        tcp_pair: tuple[RawConnection, RawConnection],
        victim: str,
        seed: int,
    ) -> None:
        """Random bytes (then EOF) from the peer: a typed error, the connection closed."""
        sec = make_security(cached_key("ed25519", 0), handshake_timeout=3.0)
        garbage = random.Random(seed).randbytes(random.Random(seed).randint(1, 300))
        if victim == "listener":
            victim_conn, peer_conn = tcp_pair[1], tcp_pair[0]
            coro = sec.secure_inbound(victim_conn)
        else:
            victim_conn, peer_conn = tcp_pair[0], tcp_pair[1]
            coro = sec.secure_outbound(victim_conn, None)
        await peer_conn.write(garbage)
        await peer_conn.close_write()
        with pytest.raises((HandshakeError, ProtocolError)):
            await asyncio.wait_for(coro, STEP_TIMEOUT)
        assert victim_conn.closed

    async def test_peer_closes_during_handshake(
        self, make_security: SecurityFactory, tcp_pair: tuple[RawConnection, RawConnection]
    ) -> None:
        sec = make_security(cached_key("ed25519", 0), handshake_timeout=5.0)
        task = asyncio.ensure_future(sec.secure_outbound(tcp_pair[0], None))
        await asyncio.sleep(0.05)
        tcp_pair[1].reset()
        # A reset is a connection failure: ConnectionClosed is as good as HandshakeError.
        with pytest.raises((HandshakeError, ProtocolError, ConnectionClosed)):
            await asyncio.wait_for(task, STEP_TIMEOUT)
        assert tcp_pair[0].closed


async def _drain_until_error(conn: SecureConnection) -> bool:
    """Read until the connection ends: True when it ended with a typed connection error
    (the peer reset it), False on a clean EOF.  Any other exception propagates (an
    untyped error is a bug of its own)."""
    try:
        while await conn.read():
            pass
    except (ConnectionClosed, ProtocolError, HandshakeError, OSError):
        return True
    return False
