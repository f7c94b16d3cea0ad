"""Compliance suite for :class:`~p2pkit.abc.SecurityProtocol` implementations.

Every security plugin (ours and third parties') runs the same scenarios, both roles,
over real loopback TCP (and the in-memory channel for the basic handshake).  Use it by
subclassing in a test module and providing one fixture::

    from p2pkit.testing.security_suite import SecuritySuite

    class TestMySecurity(SecuritySuite):
        @pytest.fixture
        def make_security(self):
            def make(private_key, *, handshake_timeout=10.0):
                return MySecurity(private_key, MyOptions(handshake_timeout=handshake_timeout))
            return make

Class attributes tune the suite: ``key_types`` (identity key types the protocol
supports), ``authenticates`` (False for an insecure protocol that cannot prove key
possession, like ``/plaintext/2.0.0``: the impersonation test is skipped),
``negotiates_early_muxer`` (False for a protocol that cannot carry a muxer list in its
handshake, like ``/plaintext/2.0.0``: then both sides must report none).

Scenarios, each in both roles where it applies: handshake over loopback TCP with every
identity key type, over the in-memory channel, without an expected peer id; both sides
agree on the early muxer (and do negotiate one when both offer the same list); a
10,000-chunk echo checked by hash; push mode delivers everything (including bytes
buffered before ``start_push``), nothing while paused and all of it after resuming;
half-close; dialing an
expected peer id of another key (PeerIdMismatch); impersonation with someone else's
public key; handshake timeout against a silent peer; random garbage then EOF; the peer
resetting mid-handshake.  Every failure must be a typed error and leave the connection
closed.

Needs pytest and pytest-asyncio (``asyncio_mode = auto``) and the ``p2pkit-tcp``
plugin for the TCP scenarios.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import random
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, ClassVar

import pytest

from p2pkit.abc import RawConnection, SecureConnection, SecurityProtocol
from p2pkit.crypto import KeyType, PrivateKey, PublicKey, generate_private_key
from p2pkit.errors import (
    ConnectionClosed,
    HandshakeError,
    HandshakeTimeout,
    PeerIdMismatch,
    ProtocolError,
)
from p2pkit.peer import PeerId
from p2pkit.testing.memory import channel_pair, tcp_channel_pair

__all__ = [
    "KEY_TYPES",
    "Impostor",
    "PushCollector",
    "SecurityFactory",
    "SecuritySuite",
    "cached_key",
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


class SecuritySuite:
    """Scenarios every SecurityProtocol must pass.  Subclass it (name ``Test...``)."""

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

    # -- handshake -------------------------------------------------------------------

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

    # -- data ------------------------------------------------------------------------

    @pytest.mark.parametrize("writer", ["dialer", "listener"])
    async def test_large_echo(
        self,
        make_security: SecurityFactory,
        tcp_pair: tuple[RawConnection, RawConnection],
        writer: str,
    ) -> None:
        """10,000 chunks of random sizes (a few over 64 KiB, so frames split) echoed back."""
        client, server = await self.secure_pair(make_security, tcp_pair)
        a, b = (client, server) if writer == "dialer" else (server, client)
        rng = random.Random(1234)
        sizes = [_chunk_size(rng) for _ in range(10_000)]
        total = sum(sizes)
        blob = rng.randbytes(max(sizes))

        async def echo() -> None:
            while True:
                chunk = await asyncio.wait_for(b.read(), STEP_TIMEOUT)
                if not chunk:
                    await b.close_write()
                    return
                await b.write(chunk)

        async def send() -> None:
            for i, n in enumerate(sizes):
                await a.write(blob[i % 7 : i % 7 + n] if n + 7 <= len(blob) else blob[:n])
            await a.close_write()

        expected = hashlib.sha256()
        for i, n in enumerate(sizes):
            expected.update(blob[i % 7 : i % 7 + n] if n + 7 <= len(blob) else blob[:n])
        try:
            echo_task = asyncio.ensure_future(echo())
            send_task = asyncio.ensure_future(send())
            got = hashlib.sha256()
            received = 0
            while True:
                chunk = await asyncio.wait_for(a.read(), STEP_TIMEOUT)
                if not chunk:
                    break
                got.update(chunk)
                received += len(chunk)
            await asyncio.wait_for(asyncio.gather(echo_task, send_task), STEP_TIMEOUT)
            assert received == total
            assert got.digest() == expected.digest()
        finally:
            await _close_all(client, server)

    @pytest.mark.parametrize("pusher", ["dialer", "listener"])
    async def test_push_mode_delivers_everything(
        self,
        make_security: SecurityFactory,
        tcp_pair: tuple[RawConnection, RawConnection],
        pusher: str,
    ) -> None:
        client, server = await self.secure_pair(make_security, tcp_pair)
        reader, writer = (client, server) if pusher == "dialer" else (server, client)
        data = random.Random(7).randbytes(3_000_000)
        try:
            # Some bytes arrive before push mode starts: they must be delivered first.
            writer.write_nowait(data[:1000])
            await asyncio.wait_for(reader.readexactly(10), STEP_TIMEOUT)
            collector = PushCollector()
            reader.start_push(collector)
            await collector.wait_for_bytes(990, "bytes buffered before push")
            assert bytes(collector.data) == data[10:1000]
            # Paused: the next bytes reach the reader's side but are not delivered.
            reader.pause_reading()
            writer.write_nowait(data[1000:201_000])
            await asyncio.wait_for(writer.drain(), STEP_TIMEOUT)
            await asyncio.sleep(0.1)  # proving an absence needs some time to pass
            assert len(collector.data) == 990, (
                f"{len(collector.data) - 990} bytes delivered while reading was paused"
            )
            reader.resume_reading()
            await collector.wait_for_bytes(200_990, "bytes held back while paused")
            assert bytes(collector.data) == data[10:201_000]
            pos = 201_000
            while pos < len(data):
                n = min(len(data) - pos, 100_000)
                writer.write_nowait(data[pos : pos + n])
                pos += n
                if writer.write_paused:
                    await asyncio.wait_for(writer.drain(), STEP_TIMEOUT)
            await writer.close_write()
            await asyncio.wait_for(collector.eof, STEP_TIMEOUT)
            assert bytes(collector.data) == data[10:]
            assert not collector.lost.done() or collector.lost.result() is None
        finally:
            await _close_all(client, server)

    async def test_write_many_keeps_order_while_queued(
        self,
        make_security: SecurityFactory,
        tcp_pair: tuple[RawConnection, RawConnection],
    ) -> None:
        """write_many() parts arrive in order, also when the writer ignores backpressure
        and the transport holds many unsent buffers (an encrypting channel must not reuse
        memory a transport still references)."""
        client, server = await self.secure_pair(make_security, tcp_pair)
        rng = random.Random(11)
        batches = [
            [rng.randbytes(12), rng.randbytes(rng.randrange(100_000, 400_000)), b""]
            for _ in range(30)
        ]
        expected = b"".join(b"".join(parts) for parts in batches)
        try:
            for parts in batches:
                client.write_many(parts)  # no drain: everything queues up
            await client.close_write()
            got = bytearray()
            while True:
                chunk = await asyncio.wait_for(server.read(), STEP_TIMEOUT)
                if not chunk:
                    break
                got += chunk
            assert len(got) == len(expected)
            assert hashlib.sha256(got).digest() == hashlib.sha256(expected).digest()
        finally:
            await _close_all(client, server)

    async def test_half_close(
        self, make_security: SecurityFactory, tcp_pair: tuple[RawConnection, RawConnection]
    ) -> None:
        client, server = await self.secure_pair(make_security, tcp_pair)
        try:
            await client.write(b"request")
            await client.close_write()
            assert await _read_until_eof(server) == b"request"
            # The other direction still works after the client's half-close.
            await server.write(b"response")
            await server.close_write()
            assert await _read_until_eof(client) == b"response"
        finally:
            await _close_all(client, server)

    # -- failures --------------------------------------------------------------------

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


def _chunk_size(rng: random.Random) -> int:
    r = rng.random()
    if r < 0.02:
        return rng.randint(60_000, 140_000)
    if r < 0.5:
        return rng.randint(1, 100)
    return rng.randint(1, 2_000)


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
