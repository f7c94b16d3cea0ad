"""The asyncio shell: NoiseSecurity + NoiseConnection over memory and TCP channels."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from p2pkit.abc import RawConnection
from p2pkit.crypto import PrivateKey
from p2pkit.errors import (
    ConfigError,
    ConnectionClosed,
    HandshakeError,
    HandshakeTimeout,
    ResourceLimitExceeded,
)
from p2pkit.peer import PeerId
from p2pkit.plugins.spec import Components
from p2pkit.testing.memory import channel_pair, tcp_channel_pair
from p2pkit.testing.security_suite import PushCollector
from p2pkit_noise import (
    MAX_PLAINTEXT,
    BadFrameLength,
    DecryptError,
    NoiseConnection,
    NoiseOptions,
    NoiseSecurity,
    NoMuxerOverlap,
    NonceExhausted,
)
from p2pkit_noise.framing import MAX_NONCE

YAMUX = "/yamux/1.0.0"
MPLEX = "/mplex/6.7.0"
T = 10.0

Identity = Callable[..., PrivateKey]


async def _close(*conns: Any) -> None:
    for c in conns:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(c.close(), 5)
        with contextlib.suppress(Exception):
            c.reset()
    for _ in range(3):
        await asyncio.sleep(0)


@pytest.fixture
async def tcp() -> AsyncIterator[tuple[RawConnection, RawConnection]]:
    a, b = await tcp_channel_pair()
    yield a, b
    await _close(a, b)


async def secure(
    identity: Identity,
    raw: tuple[RawConnection, RawConnection],
    *,
    imux: tuple[str, ...] = (),
    rmux: tuple[str, ...] = (),
    iopts: NoiseOptions | None = None,
    ropts: NoiseOptions | None = None,
) -> tuple[NoiseConnection, NoiseConnection]:
    a, b = identity("ed25519", 0), identity("ed25519", 1)
    client, server = NoiseSecurity(a, iopts), NoiseSecurity(b, ropts)
    out, inb = await asyncio.wait_for(
        asyncio.gather(
            client.secure_outbound(raw[0], PeerId.from_public_key(b.public_key), imux),
            server.secure_inbound(raw[1], rmux),
        ),
        T,
    )
    return out, inb


# -- transport errors -----------------------------------------------------------------


async def test_decrypt_failure_in_pull_mode(identity: Identity, tcp: Any) -> None:
    client, server = await secure(identity, tcp)
    # A well-formed frame that does not authenticate, written under the Noise layer.
    client.raw.write_nowait(b"\x00\x20" + bytes(32))
    with pytest.raises(DecryptError):
        await asyncio.wait_for(server.read(), T)
    assert server.closed and server.raw.closed
    with pytest.raises(ConnectionClosed):
        server.write_nowait(b"x")
    # The peer sees its connection die (reset), nothing hangs.
    with contextlib.suppress(ConnectionClosed):
        while await asyncio.wait_for(client.read(), T):
            pass
    await _close(client, server)


async def test_decrypt_failure_in_push_mode(identity: Identity, tcp: Any) -> None:
    client, server = await secure(identity, tcp)
    collector = PushCollector()
    server.start_push(collector)
    await client.write(b"fine")
    client.raw.write_nowait(b"\x00\x11" + bytes(17))
    exc = await asyncio.wait_for(collector.lost, T)
    assert isinstance(exc, DecryptError)
    assert bytes(collector.data) == b"fine"
    assert server.raw.closed
    await _close(client, server)


async def test_bad_frame_length(identity: Identity, tcp: Any) -> None:
    client, server = await secure(identity, tcp)
    client.raw.write_nowait(b"\x00\x03abc")
    with pytest.raises(BadFrameLength):
        await asyncio.wait_for(server.read(), T)
    await _close(client, server)


async def test_stream_cut_inside_a_frame(identity: Identity, tcp: Any) -> None:
    client, server = await secure(identity, tcp)
    frame = bytes(client._encoder.encrypt(b"complete")) + bytes(
        client._encoder.encrypt(b"cut short")
    )
    client.raw.write_nowait(frame[:-3])
    await client.raw.close_write()
    assert await asyncio.wait_for(server.read(), T) == b"complete"
    with pytest.raises(BadFrameLength):
        await asyncio.wait_for(server.read(), T)
    await _close(client, server)


async def test_nonce_exhaustion_closes_the_connection(identity: Identity) -> None:
    raw = channel_pair()
    client, server = await secure(identity, raw)
    client._encoder.nonce = server._decoder.nonce = MAX_NONCE - 1
    client.write_nowait(b"last")
    assert await asyncio.wait_for(server.read(), T) == b"last"
    with pytest.raises(NonceExhausted):
        client.write_nowait(b"one more")
    assert client.closed
    await _close(client, server)


# -- data path ------------------------------------------------------------------------


async def test_write_nowait_hands_one_fresh_buffer_per_call(identity: Identity) -> None:
    raw = channel_pair()
    client, server = await secure(identity, raw)
    calls: list[Any] = []
    real = client.raw.write_nowait

    def spy(data: Any) -> None:
        calls.append(data)
        real(data)

    client.raw.write_nowait = spy  # type: ignore[method-assign]
    payload = bytes(range(256)) * 1000  # 256,000 bytes: 4 frames
    client.write_nowait(payload)
    client.write_nowait(b"tail")
    assert len(calls) == 2
    assert len(calls[0]) == len(payload) + 4 * 18
    assert calls[0] is not calls[1]
    got = await asyncio.wait_for(server.readexactly(len(payload) + 4), T)
    assert got == payload + b"tail"
    await _close(client, server)


async def test_early_data_right_after_the_handshake(identity: Identity) -> None:
    """Bytes the initiator sends with/just after message 3 reach the responder."""
    raw = channel_pair()
    a, b = identity("ed25519", 0), identity("ed25519", 1)
    client_sec, server_sec = NoiseSecurity(a), NoiseSecurity(b)

    async def dial() -> NoiseConnection:
        conn = await client_sec.secure_outbound(raw[0], None)
        conn.write_nowait(b"early" * 20_000)  # sent before the responder has finished
        return conn

    client, server = await asyncio.wait_for(
        asyncio.gather(dial(), server_sec.secure_inbound(raw[1])), T
    )
    assert await asyncio.wait_for(server.readexactly(100_000), T) == b"early" * 20_000
    await _close(client, server)


async def test_pull_mode_backpressure(identity: Identity) -> None:
    """A reader that does not read stops the writer (bounded memory), nothing is lost."""
    raw = channel_pair(high_water=256 * 1024)
    client, server = await secure(identity, raw)
    data = bytes(range(256)) * 40_000  # 10 MB
    sent = 0
    while sent < len(data) and not client.write_paused:
        client.write_nowait(data[sent : sent + MAX_PLAINTEXT])
        sent += MAX_PLAINTEXT
        await asyncio.sleep(0)
    assert client.write_paused, "the writer was never paused"
    assert sent < len(data)

    async def writer() -> None:
        nonlocal sent
        while sent < len(data):
            await client.drain()
            client.write_nowait(data[sent : sent + MAX_PLAINTEXT])
            sent += MAX_PLAINTEXT
        await client.close_write()

    task = asyncio.ensure_future(writer())
    got = bytearray()
    while chunk := await asyncio.wait_for(server.read(), T):
        got += chunk
    await asyncio.wait_for(task, T)
    assert got == data
    await _close(client, server)


async def test_pause_and_resume_in_push_mode(identity: Identity, tcp: Any) -> None:
    client, server = await secure(identity, tcp)
    collector = PushCollector()
    server.start_push(collector)
    server.pause_reading()
    await client.write(b"x" * 1000)
    await asyncio.sleep(0.05)
    assert len(collector.data) == 0
    server.resume_reading()
    for _ in range(200):
        if len(collector.data) == 1000:
            break
        await asyncio.sleep(0.01)
    assert bytes(collector.data) == b"x" * 1000
    await _close(client, server)


async def test_start_push_delivers_buffered_data_and_eof(identity: Identity) -> None:
    raw = channel_pair()
    client, server = await secure(identity, raw)
    await client.write(b"buffered")
    await client.close_write()
    for _ in range(100):
        if server._rbuf.at_eof or server._eof:
            break
        await asyncio.sleep(0.001)
    collector = PushCollector()
    server.start_push(collector)
    await asyncio.wait_for(collector.eof, T)
    assert bytes(collector.data) == b"buffered"
    with pytest.raises(RuntimeError):
        await server.read()
    await _close(client, server)


# -- early muxer negotiation through the shell ----------------------------------------


@pytest.mark.parametrize(
    ("imux", "rmux", "expected"),
    [
        ((YAMUX, MPLEX), (YAMUX, MPLEX), YAMUX),
        ((MPLEX, YAMUX), (YAMUX, MPLEX), MPLEX),
        ((YAMUX,), (), None),
        ((), (YAMUX,), None),
    ],
)
async def test_early_muxer(
    identity: Identity,
    imux: tuple[str, ...],
    rmux: tuple[str, ...],
    expected: str | None,
) -> None:
    raw = channel_pair()
    client, server = await secure(identity, raw, imux=imux, rmux=rmux)
    assert client.early_muxer == server.early_muxer == expected
    await _close(client, server)


async def test_early_muxer_option_off(identity: Identity) -> None:
    raw = channel_pair()
    off = NoiseOptions(early_muxer_negotiation=False)
    client, server = await secure(identity, raw, imux=(YAMUX,), rmux=(YAMUX,), ropts=off)
    assert client.early_muxer is None and server.early_muxer is None
    assert client.remote_extensions is not None
    assert client.remote_extensions.stream_muxers == ()  # the field is sent, empty
    await _close(client, server)


async def test_early_muxer_no_overlap_fails_both_sides(identity: Identity, tcp: Any) -> None:
    a, b = identity("ed25519", 0), identity("ed25519", 1)
    out, inb = await asyncio.wait_for(
        asyncio.gather(
            NoiseSecurity(a).secure_outbound(tcp[0], None, (YAMUX,)),
            NoiseSecurity(b).secure_inbound(tcp[1], (MPLEX,)),
            return_exceptions=True,
        ),
        T,
    )
    assert isinstance(out, NoMuxerOverlap)
    assert isinstance(inb, HandshakeError)
    assert tcp[0].closed and tcp[1].closed


# -- limits and plugin -----------------------------------------------------------------


async def test_inbound_handshake_cap(identity: Identity, caplog: pytest.LogCaptureFixture) -> None:
    sec = NoiseSecurity(
        identity("ed25519", 1), NoiseOptions(handshake_timeout=0.5, max_inbound_handshakes=2)
    )
    pairs = [channel_pair() for _ in range(3)]
    tasks = [asyncio.ensure_future(sec.secure_inbound(p[1])) for p in pairs[:2]]
    await asyncio.sleep(0.01)
    assert sec.inbound_handshakes == 2
    with pytest.raises(ResourceLimitExceeded):
        await sec.secure_inbound(pairs[2][1])
    assert pairs[2][1].closed
    assert "refusing inbound connection" in caplog.text
    for t in tasks:
        with pytest.raises(HandshakeTimeout):
            await asyncio.wait_for(t, T)
    assert sec.inbound_handshakes == 0
    # Capacity is back: a real handshake succeeds.
    raw = channel_pair()
    client = NoiseSecurity(identity("ed25519", 0))
    out, inb = await asyncio.wait_for(
        asyncio.gather(client.secure_outbound(raw[0], None), sec.secure_inbound(raw[1])), T
    )
    await _close(out, inb, *(c for p in pairs for c in p))


def test_options_validation() -> None:
    with pytest.raises(ConfigError):
        NoiseOptions(handshake_timeout=0)
    with pytest.raises(ConfigError):
        NoiseOptions(max_inbound_handshakes=0)


def test_plugin_hook_and_factory(identity: Identity) -> None:
    from p2pkit_noise import plugin

    (spec,) = plugin.p2pkit_security_protocols()
    assert (spec.kind, spec.name, spec.protocol_id, spec.options) == (
        "security",
        "noise",
        "/noise",
        NoiseOptions,
    )
    key = identity("ed25519", 0)
    peer = PeerId.from_public_key(key.public_key)
    sec = spec.factory(Components(private_key=key, peer_id=peer), NoiseOptions())
    assert isinstance(sec, NoiseSecurity)
    assert sec.protocol_id == "/noise" and sec.peer_id == peer


def test_entry_point_registered() -> None:
    from importlib.metadata import entry_points

    eps = {ep.name: ep.value for ep in entry_points(group="p2pkit")}
    assert eps.get("noise") == "p2pkit_noise.plugin"


async def test_truncated_message_2(identity: Identity, tcp: Any) -> None:
    """The responder sends half of a real message 2, then closes: HandshakeTruncated."""
    from p2pkit_noise import HandshakeTruncated, NoiseHandshake

    sec = NoiseSecurity(identity("ed25519", 0))
    task = asyncio.ensure_future(sec.secure_outbound(tcp[0], None))
    responder = NoiseHandshake(is_initiator=False, identity=identity("ed25519", 1))
    m1 = await asyncio.wait_for(tcp[1].readexactly(34), T)
    responder.receive_data(m1)
    m2 = responder.data_to_send()
    await tcp[1].write(m2[: len(m2) // 2])
    await tcp[1].close_write()
    with pytest.raises(HandshakeTruncated):
        await asyncio.wait_for(task, T)
    assert tcp[0].closed


async def test_cancelled_handshake_closes_the_connection(identity: Identity, tcp: Any) -> None:
    sec = NoiseSecurity(identity("ed25519", 0))
    task = asyncio.ensure_future(sec.secure_inbound(tcp[1]))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert tcp[1].closed
    assert sec.inbound_handshakes == 0
