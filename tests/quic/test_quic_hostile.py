"""Hostile input against a QUIC listener: garbage and truncated packets, floods of
Initials from addresses that never answer (what spoofed sources look like to us),
stream floods.  Each costs bounded work and memory, and the listener keeps serving."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import socket
import ssl
import tracemalloc

from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection
from multiaddr import Multiaddr

from p2pkit.network import MuxedTransportConnection
from p2pkit_quic import QuicTransport

from .conftest import LISTEN


async def _listen(
    transport: QuicTransport,
) -> tuple[object, list[MuxedTransportConnection], tuple[str, int]]:
    accepted: list[MuxedTransportConnection] = []
    listener = await transport.listen(Multiaddr(LISTEN), accepted.append)
    addr = listener.addrs[0]
    return listener, accepted, ("127.0.0.1", int(addr.value_for_protocol("udp")))


async def _still_serves(
    client: QuicTransport, listener: object, accepted: list[MuxedTransportConnection]
) -> None:
    """A real client connects and its first stream's bytes reach the server."""
    before = len(accepted)
    conn = await client.dial(listener.addrs[0], timeout=5)  # type: ignore[attr-defined]
    stream = await conn.muxed.open_stream()
    await stream.write(b"ping")
    await stream.close_write()
    async with asyncio.timeout(5):
        while len(accepted) == before:
            await asyncio.sleep(0.01)
        inbound = await accepted[-1].muxed.accept_stream()
        assert await inbound.read() == b"ping"
    conn.muxed.abort()


def _initial() -> bytes:
    """A fresh, valid client Initial (a new connection id each time)."""
    config = QuicConfiguration(is_client=True, alpn_protocols=["libp2p"], verify_mode=ssl.CERT_NONE)
    quic = QuicConnection(configuration=config)
    quic.connect(("127.0.0.1", 9), now=0.0)
    return quic.datagrams_to_send(now=0.0)[0][0]


async def test_garbage_and_truncated_packets_are_dropped(transports):
    server, client = transports(), transports()
    listener, accepted, target = await _listen(server)
    rng = random.Random(7)
    valid = _initial()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as attacker:
        attacker.setblocking(False)
        for i in range(3000):
            kind = i % 5
            if kind == 4:  # another QUIC version, random body (aioquic's parser chokes)
                data = bytes([0xC0]) + os.urandom(4) + os.urandom(rng.randrange(2, 1500))
            elif kind == 0:
                data = os.urandom(rng.randrange(1, 1500))
            elif kind == 1:  # looks like a long-header Initial, body garbage
                data = bytes([0xC0]) + b"\x00\x00\x00\x01" + os.urandom(1300)
            elif kind == 2:  # a real Initial cut short
                data = valid[: rng.randrange(1, len(valid))]
            else:  # a real Initial with flipped bits (fails decryption)
                buf = bytearray(valid)
                buf[rng.randrange(30, len(buf))] ^= 0xFF
                data = bytes(buf)
            try:
                attacker.sendto(data, target)
            except BlockingIOError:
                await asyncio.sleep(0.001)
            if i % 200 == 0:
                await asyncio.sleep(0)
        await asyncio.sleep(0.2)
    endpoint = listener.endpoint  # type: ignore[attr-defined]
    # Only the cut-short-but-long-enough / bit-flipped Initials create a handshake
    # (they look like new connections until decryption fails): bounded by the cap.
    assert endpoint.handshakes <= server.options.max_handshakes
    await _still_serves(client, listener, accepted)
    assert len(accepted) == 1  # the real client, and no connection from the garbage


async def test_initial_flood_is_capped_and_amplification_limited(transports):
    """Initials from sources that never answer (spoofed addresses): at most
    ``max_handshakes`` held, each for ``handshake_timeout``, and at most three times
    the bytes received are sent back before the address is validated."""
    server = transports(max_handshakes=16, handshake_timeout=0.5)
    client = transports()
    listener, accepted, target = await _listen(server)
    endpoint = listener.endpoint  # type: ignore[attr-defined]
    sent = received = 0
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as victim:
            victim.setblocking(False)
            for _ in range(200):
                packet = _initial()
                victim.sendto(packet, target)
                sent += len(packet)
                await asyncio.sleep(0)
                assert endpoint.handshakes <= 16
            for _ in range(20):  # collect what came back, retransmissions included
                await asyncio.sleep(0.05)
                while True:
                    try:
                        received += len(victim.recv(65536))
                    except BlockingIOError:
                        break
        grown = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    assert 0 < received <= 3 * sent
    assert grown < 16 * 1024 * 1024, grown  # 16 half-open handshakes at most
    async with asyncio.timeout(5):
        while endpoint.handshakes or endpoint.sessions:  # each times out
            await asyncio.sleep(0.05)
    await _still_serves(client, listener, accepted)


async def test_stateless_retry_keeps_no_state_for_unvalidated_sources(transports):
    server = transports(retry=True)
    client = transports()
    listener, accepted, target = await _listen(server)
    endpoint = listener.endpoint  # type: ignore[attr-defined]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as victim:
        victim.setblocking(False)
        for _ in range(100):
            victim.sendto(_initial(), target)
        await asyncio.sleep(0.2)
        replies = []
        while True:
            try:
                replies.append(victim.recv(65536))
            except BlockingIOError:
                break
    assert replies and all(r[0] & 0xF0 == 0xF0 for r in replies)  # Retry packets only
    assert all(len(r) < 200 for r in replies)
    assert endpoint.handshakes == 0 and endpoint.sessions == 0
    await _still_serves(client, listener, accepted)  # a real client follows the Retry


async def test_stream_flood_beyond_max_streams_closes_that_connection_only(transports):
    server = transports(max_streams=8)
    client, other = transports(), transports()
    listener, accepted, _ = await _listen(server)
    conn = await client.dial(listener.addrs[0], timeout=5)  # type: ignore[attr-defined]
    session = conn.muxed
    session.quic._remote_max_streams_bidi = 10**6  # ignore the peer's MAX_STREAMS
    streams = [await session.open_stream() for _ in range(100)]
    for s in streams:
        await s.write(b"x")
    async with asyncio.timeout(5):
        await session.wait_closed()  # the server closed it: STREAM_LIMIT_ERROR
    await _still_serves(other, listener, accepted)


async def test_well_behaved_stream_flood_waits_for_credit(transports):
    """A peer that respects MAX_STREAMS: at most ``max_streams`` are open at once on
    the server, the others wait on the client and go through as streams finish."""
    server = transports(max_streams=16)
    client = transports()
    listener, accepted, _ = await _listen(server)
    conn = await client.dial(listener.addrs[0], timeout=5)  # type: ignore[attr-defined]
    async with asyncio.timeout(5):
        while not accepted:
            await asyncio.sleep(0.01)
    inbound = accepted[0].muxed
    peak = 0

    async def serve() -> None:
        nonlocal peak
        while True:
            stream = await inbound.accept_stream()
            peak = max(peak, len(inbound.streams))
            data = await stream.read()
            await stream.write(data)
            await stream.close()

    server_task = asyncio.create_task(serve())

    async def one(i: int) -> bytes:
        stream = await conn.muxed.open_stream()
        await stream.write(b"%d" % i)
        await stream.close_write()
        return await stream.read()

    try:
        async with asyncio.timeout(20):
            got = await asyncio.gather(*(one(i) for i in range(200)))
    finally:
        server_task.cancel()
    assert got == [b"%d" % i for i in range(200)]
    assert peak <= 16


async def test_retry_starts_under_load_only(transports):
    """Below ``retry_above`` handshakes in progress a new client costs one round trip;
    at the threshold, Initials from unvalidated sources get a Retry and no state."""
    server = transports(retry_above=4, handshake_timeout=5.0)
    client = transports()
    listener, accepted, target = await _listen(server)
    endpoint = listener.endpoint  # type: ignore[attr-defined]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as victim:
        victim.setblocking(False)
        for _ in range(50):
            victim.sendto(_initial(), target)
        async with asyncio.timeout(5):
            while endpoint.handshakes < 4:
                await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)
        retries = 0
        while True:
            try:
                packet = victim.recv(65536)
            except BlockingIOError:
                break
            retries += packet[0] & 0xF0 == 0xF0
    assert endpoint.handshakes == 4  # state for the first four only
    assert retries == 46
    await _still_serves(client, listener, accepted)  # follows a Retry, then connects


async def test_version_negotiation_only_for_full_size_datagrams(transports):
    server = transports()
    _listener, _accepted, target = await _listen(server)
    other_version = bytes([0xC0]) + b"\x1a\x2a\x3a\x4a" + b"\x08" + os.urandom(8) + b"\x08"
    other_version += os.urandom(8)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as peer:
        peer.setblocking(False)
        peer.sendto(other_version + os.urandom(20), target)  # small: no answer
        peer.sendto(other_version + os.urandom(1200), target)  # full size: VN
        replies: list[bytes] = []
        async with asyncio.timeout(5):
            while not replies:
                await asyncio.sleep(0.01)
                with contextlib.suppress(BlockingIOError):
                    replies.append(peer.recv(65536))
        await asyncio.sleep(0.1)
        with contextlib.suppress(BlockingIOError):
            replies.append(peer.recv(65536))
    assert len(replies) == 1  # nothing for the small datagram
    assert replies[0][1:5] == b"\x00\x00\x00\x00"  # version 0: Version Negotiation
    assert b"\x00\x00\x00\x01" in replies[0][5:]  # offering QUIC v1


async def test_an_initial_that_does_not_decrypt_keeps_no_state(transports):
    """A full-size Initial whose protection fails (bits flipped) is forgotten at once:
    no handshake slot (nor, in a host, a pending-connection place) held until the
    handshake timeout, and no error in the event loop; a valid Initial still is kept."""
    server = transports(handshake_timeout=30.0)
    client = transports()
    listener, accepted, target = await _listen(server)
    endpoint = listener.endpoint  # type: ignore[attr-defined]
    loop = asyncio.get_running_loop()
    errors: list[dict[str, object]] = []
    loop.set_exception_handler(lambda _loop, context: errors.append(context))
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as attacker:
            for i in range(20):
                buf = bytearray(_initial())
                buf[200 + i] ^= 0xFF  # inside the protected payload
                attacker.sendto(bytes(buf), target)
            attacker.sendto(_initial(), target)  # a valid one last: it stalls
            async with asyncio.timeout(5):
                while not endpoint.handshakes:  # the valid one arrived, so had the others
                    await asyncio.sleep(0.01)
                await asyncio.sleep(0)
            assert endpoint.handshakes == 1 and endpoint.sessions == 1
            async with asyncio.timeout(5):
                await _still_serves(client, listener, accepted)
    finally:
        loop.set_exception_handler(None)
    assert not errors, errors
