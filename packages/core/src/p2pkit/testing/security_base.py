"""What every security scenario builds on: identity keys, test doubles, the fixtures.

:func:`cached_key` hands out identity keys generated once per process, :class:`Impostor`
claims a public key it cannot sign for, :class:`PushCollector` records what a push-mode
receiver gets.  :class:`SecuritySuiteBase` holds the suite's tuning attributes, its
fixtures (``make_security``, to override, and ``tcp_pair``) and the helpers the
scenarios share (:meth:`~SecuritySuiteBase.secure_pair` runs both handshakes,
:meth:`~SecuritySuiteBase.check_identities` checks what each side learned).  The
scenarios themselves are in ``security_handshake``, ``security_data`` and
``security_failures``; :class:`~p2pkit.testing.security_suite.SecuritySuite` combines them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, ClassVar

import pytest

from p2pkit.abc import RawConnection, SecureConnection, SecurityProtocol
from p2pkit.crypto import KeyType, PrivateKey, PublicKey, generate_private_key
from p2pkit.peer import PeerId
from p2pkit.testing.memory import tcp_channel_pair

__all__ = [
    "KEY_TYPES",
    "Impostor",
    "PushCollector",
    "SecurityFactory",
    "SecuritySuiteBase",
    "cached_key",
    "peer_of",
]

KEY_TYPES = ("ed25519", "secp256k1", "ecdsa", "rsa")
MUXERS = ("/yamux/1.0.0", "/mplex/6.7.0")
STEP_TIMEOUT = 20.0
"""Upper bound on any single await in the suite: nothing can hang a CI run."""

SecurityFactory = Callable[..., SecurityProtocol]
"""``make(private_key, *, handshake_timeout=...) -> SecurityProtocol``."""

_keys: dict[tuple[str, int], PrivateKey] = {}


def cached_key(key_type: str, n: int = 0) -> PrivateKey:
    """The n-th identity key of a type, generated once per process (RSA is slow)."""
    key = _keys.get((key_type, n))
    if key is None:
        key = _keys[(key_type, n)] = generate_private_key(key_type)
    return key


def peer_of(key: PrivateKey) -> PeerId:
    return PeerId.from_public_key(key.public_key)


class Impostor(PrivateKey):
    """Claims ``victim``'s public key but can only sign with ``signer``: what an attacker
    who knows a peer's public key (everyone does) but not its private key can do."""

    __slots__ = ("_signer", "_victim")
    key_type = KeyType.Ed25519

    def __init__(self, victim: PrivateKey, signer: PrivateKey) -> None:
        self._victim = victim.public_key
        self._signer = signer

    @property
    def public_key(self) -> PublicKey:
        return self._victim

    def sign(self, data: bytes) -> bytes:
        return self._signer.sign(data)

    def to_bytes(self) -> bytes:
        return self._signer.to_bytes()

    def to_cryptography(self) -> Any:
        return self._signer.to_cryptography()


class PushCollector:
    """A push-mode receiver that keeps everything it is given."""

    def __init__(self) -> None:
        self.data = bytearray()
        loop = asyncio.get_running_loop()
        self.eof: asyncio.Future[None] = loop.create_future()
        self.lost: asyncio.Future[BaseException | None] = loop.create_future()
        self._grew = asyncio.Event()

    def data_received(self, data: memoryview) -> None:
        self.data += data
        self._grew.set()

    async def wait_for_bytes(self, n: int, what: str) -> None:
        """Wait (bounded by :data:`STEP_TIMEOUT`) until at least ``n`` bytes arrived."""
        try:
            async with asyncio.timeout(STEP_TIMEOUT):
                while len(self.data) < n:
                    self._grew.clear()
                    await self._grew.wait()
        except TimeoutError:
            raise AssertionError(
                f"timed out waiting for {what}: {len(self.data)} of {n} bytes"
            ) from None

    def eof_received(self) -> None:
        if not self.eof.done():
            self.eof.set_result(None)

    def connection_lost(self, exc: BaseException | None) -> None:
        if not self.lost.done():
            self.lost.set_result(exc)
        if not self.eof.done():
            self.eof.set_result(None)


async def _close_all(*conns: Any) -> None:
    for c in conns:
        if c is None:
            continue
        with contextlib.suppress(Exception):
            await asyncio.wait_for(c.close(), 5.0)
        with contextlib.suppress(Exception):
            c.reset()
    # Let the transports' connection_lost callbacks run (sockets really closed).
    for _ in range(3):
        await asyncio.sleep(0)


async def _read_until_eof(conn: SecureConnection) -> bytes:
    parts: list[bytes] = []
    while True:
        chunk = await asyncio.wait_for(conn.read(), STEP_TIMEOUT)
        if not chunk:
            return b"".join(parts)
        parts.append(chunk)


class SecuritySuiteBase:
    """Tuning attributes, fixtures and shared helpers of :class:`~p2pkit.testing.
    security_suite.SecuritySuite` (its scenarios are in the mixins that subclass this)."""

    key_types: ClassVar[Sequence[str]] = KEY_TYPES
    authenticates: ClassVar[bool] = True
    """False for protocols without proof of key possession (plaintext)."""
    negotiates_early_muxer: ClassVar[bool] = True
    """False for protocols whose handshake cannot carry muxers (plaintext)."""

    # -- fixtures ------------------------------------------------------------------

    @pytest.fixture
    def make_security(self) -> SecurityFactory:
        """Override: return ``make(private_key, *, handshake_timeout=10.0)``."""
        pytest.fail("the suite subclass must provide the make_security fixture")

    @pytest.fixture
    async def tcp_pair(self) -> AsyncIterator[tuple[RawConnection, RawConnection]]:
        """A connected loopback TCP pair (dialer, listener side), closed afterwards."""
        dialer, listener = await asyncio.wait_for(tcp_channel_pair(), STEP_TIMEOUT)
        yield dialer, listener
        await _close_all(dialer, listener)

    # -- helpers ---------------------------------------------------------------------

    async def secure_pair(
        self,
        make_security: SecurityFactory,
        raw: tuple[RawConnection, RawConnection],
        *,
        client_key: PrivateKey | None = None,
        server_key: PrivateKey | None = None,
        expected: PeerId | bool | None = True,
        muxers: Sequence[str] = (),
    ) -> tuple[SecureConnection, SecureConnection]:
        """Run both handshakes concurrently; ``expected=True`` dials the server's id."""
        client_key = client_key or cached_key("ed25519", 0)
        server_key = server_key or cached_key("ed25519", 1)
        remote = peer_of(server_key) if expected is True else (expected or None)
        client = make_security(client_key)
        server = make_security(server_key)
        out, inb = await asyncio.wait_for(
            asyncio.gather(
                client.secure_outbound(raw[0], remote, muxers),
                server.secure_inbound(raw[1], muxers),
                return_exceptions=True,
            ),
            STEP_TIMEOUT,
        )
        for r in (out, inb):
            if isinstance(r, BaseException):
                await _close_all(*(x for x in (out, inb) if isinstance(x, SecureConnection)))
                raise r
        assert isinstance(out, SecureConnection) and isinstance(inb, SecureConnection)
        return out, inb

    def check_identities(
        self,
        client: SecureConnection,
        server: SecureConnection,
        client_key: PrivateKey,
        server_key: PrivateKey,
        protocol_id: str,
    ) -> None:
        assert client.is_initiator and not server.is_initiator
        assert client.remote_peer == peer_of(server_key)
        assert client.remote_public_key == server_key.public_key
        assert client.local_peer == peer_of(client_key)
        assert server.remote_peer == peer_of(client_key)
        assert server.remote_public_key == client_key.public_key
        assert server.local_peer == peer_of(server_key)
        assert client.security_protocol == server.security_protocol == protocol_id
