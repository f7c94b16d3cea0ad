"""Resource limits that QUIC enforces in its own protocol: the inbound stream limit is
the peer's QUIC stream credit (MAX_STREAMS), so a peer at the limit waits instead of
being reset; QUIC handshakes in progress count as pending inbound connections."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import time

import pytest
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection
from multiaddr import Multiaddr

from p2pkit.errors import DialError, HandshakeError
from p2pkit.gater import ConnectionGated
from p2pkit.host import Host
from p2pkit.limits import LimitExceeded
from p2pkit.network import MuxedTransportConnection
from p2pkit.peer import PeerId
from p2pkit.protocols.echo import PROTOCOL_ID as ECHO
from p2pkit_quic import QuicTransport
from p2pkit_tls.testing import custom_certificate

from .conftest import LISTEN

HOLD = "/hold/1"


async def _echo(host: Host, peer: PeerId, payload: bytes) -> bytes:
    stream = await host.new_stream(peer, [ECHO])
    await stream.write(payload)
    await stream.close_write()
    return await stream.read()


def _quic(host: Host) -> QuicTransport:
    transport = next(t for t in host.swarm.transports if t.name == "quic")
    assert isinstance(transport, QuicTransport)
    return transport


async def test_stream_limit_is_the_quic_stream_credit(make_host):
    """limit 4: the peer's 5th concurrent stream waits, blocked by QUIC (nothing is
    reset), and opens as soon as one of the four ends; the credit comes back stream by
    stream, so it bounds *concurrent* streams (three rounds of 4 + 1)."""
    a = await make_host(limits={"max_inbound_streams_per_conn": 4})
    assert _quic(a).options.max_streams == 4  # was 256: lowered by the spec's hook
    running: list[int] = []
    peak = 0

    async def hold(stream) -> None:  # answers "done" once the dialer closed its side
        nonlocal peak
        running.append(1)
        peak = max(peak, len(running))
        try:
            while await stream.read():
                pass
            await stream.write(b"done")
            await stream.close()
        finally:
            running.pop()

    a.set_stream_handler(HOLD, hold)
    b = await make_host(listen=False)
    conn = await b.connect(a.addrs_with_peer_id[0])
    quic = conn.muxed.quic  # the dialer's aioquic machine

    async def end(stream) -> None:
        await stream.close_write()
        assert await stream.read() == b"done"

    async with asyncio.timeout(10):
        held = [await conn.new_stream(HOLD) for _ in range(4)]
        for s in held:
            await s.write(b"x")
        for _ in range(3):
            fifth = asyncio.ensure_future(conn.new_stream(HOLD))
            while not quic._streams_blocked_bidi:  # QUIC holds its first bytes back
                await asyncio.sleep(0.005)
            assert not fifth.done()
            assert len(held) == 4 and len(running) <= 4
            await end(held.pop(0))
            held.append(await fifth)  # the credit of the stream that ended
            await held[-1].write(b"x")
        for s in held:
            await end(s)
    assert peak <= 4
    assert not a.swarm.rcmgr.refusals  # the swarm never had to reset a stream
    assert not quic._streams_blocked_bidi


def _stalled_initial() -> bytes:
    """A valid client Initial (new connection id each time) from aioquic's client
    machine, whose handshake will never go on: the sender reads nothing."""
    config = QuicConfiguration(is_client=True, alpn_protocols=["libp2p"], verify_mode=ssl.CERT_NONE)
    quic = QuicConnection(configuration=config)
    quic.connect(("127.0.0.1", 9), now=0.0)
    return quic.datagrams_to_send(now=0.0)[0][0]


@pytest.mark.parametrize(
    ("limits", "key"),
    [
        ({"max_pending_inbound": 2}, "system.pending"),
        ({"max_pending_per_ip": 2, "unlimited_networks": []}, "ip.pending"),
    ],
)
async def test_quic_handshakes_count_as_pending_connections(make_host, limits, key):
    """Two handshakes stall (raw Initials, never continued): a third one is refused
    (its Initials dropped, no state) while they are pending, and succeeds (the client
    retransmits its Initial) once they have timed out; every count returns to 0."""
    a = await make_host(limits=limits, quic={"handshake_timeout": 1.0})
    endpoint = _quic(a)._listeners[0].endpoint
    rcmgr = a.swarm.rcmgr
    port = int(a.listen_addrs[0].value_for_protocol("udp"))
    b = await make_host(listen=False, dial_timeout=8.0)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as stalled:
        async with asyncio.timeout(10):
            for _ in range(2):
                stalled.sendto(_stalled_initial(), ("127.0.0.1", port))
            while rcmgr.system.pending < 2:
                await asyncio.sleep(0.005)
            stalled.sendto(_stalled_initial(), ("127.0.0.1", port))  # one too many
            dial = asyncio.ensure_future(b.connect(a.addrs_with_peer_id[0]))
            while rcmgr.refusals[key] < 2:  # the raw third and the real client's
                await asyncio.sleep(0.005)
            assert endpoint.handshakes == 2 and rcmgr.system.pending == 2
            assert not dial.done()
            conn = await dial  # admitted once the stalled two timed out
    assert conn.peer == a.peer_id
    assert rcmgr.system.pending == 0 and rcmgr.system.conns_in == 1  # b, set up
    assert await _echo(b, a.peer_id, b"admitted") == b"admitted"
    await b.disconnect(a.peer_id)
    async with asyncio.timeout(5):
        while rcmgr.system.conns_in or endpoint.handshakes:
            await asyncio.sleep(0.01)
    assert rcmgr.system.empty and rcmgr.tracked_scopes == 0


async def test_inbound_connection_limit_refuses_quic_at_once(make_host):
    """max_inbound_connections 1: a second client is refused before any handshake
    state exists, with a stateless CONNECTION_CLOSE (CONNECTION_REFUSED, 0x2) in an
    Initial: its dial fails at once, not by its own timeout; the refusal is counted and
    the first connection is untouched."""
    a = await make_host(limits={"max_inbound_connections": 1})
    first = await make_host(listen=False)
    second = await make_host(listen=False, dial_timeout=20.0)
    await first.connect(a.addrs_with_peer_id[0])
    started = time.monotonic()
    with pytest.raises(DialError, match="refused the connection"):
        await second.connect(a.addrs_with_peer_id[0])
    assert time.monotonic() - started < 10  # an answer, not the dial timeout
    assert a.swarm.rcmgr.refusals["system.conns_inbound"] >= 1
    assert _quic(a)._listeners[0].endpoint.handshakes == 0
    assert [c.peer for c in a.connections()] == [first.peer_id]
    assert a.swarm.rcmgr.system.pending == 0


class _Ticket:
    def __init__(self, log: list[str]) -> None:
        self.log = log

    def close(self) -> None:
        self.log.append("closed")


async def test_transport_admission_contract(transports):
    """At the transport: the admission is asked once per handshake it keeps state
    for; a failed handshake (bad client certificate) closes its ticket; a completed
    one hands it over with the connection, unclosed; a refusal (a P2PError, or a bug)
    drops the Initial and the listener keeps serving."""
    server = transports(handshake_timeout=2.0)
    asked: list[object] = []
    log: list[str] = []
    refuse: list[BaseException] = []

    def admit(local: object, remote: object) -> _Ticket:
        asked.append(remote)
        if refuse:
            raise refuse[0]
        return _Ticket(log)

    accepted: list[MuxedTransportConnection] = []
    listener = await server.listen(Multiaddr(LISTEN), accepted.append, admit=admit)
    endpoint = listener.endpoint  # type: ignore[attr-defined]
    bad = transports()
    bad._certificate = custom_certificate(bad.private_key, tamper_signature=True)
    with contextlib.suppress(HandshakeError):
        conn = await bad.dial(listener.addrs[0], timeout=5)
        async with asyncio.timeout(5):
            await conn.muxed.wait_closed()
    async with asyncio.timeout(5):
        while endpoint.handshakes:
            await asyncio.sleep(0.01)
    assert len(asked) == 1 and log == ["closed"] and not accepted
    good = transports()
    await good.dial(listener.addrs[0], timeout=5)
    async with asyncio.timeout(5):
        while not accepted:
            await asyncio.sleep(0.01)
    assert isinstance(accepted[0].admission, _Ticket) and log == ["closed"]
    assert accepted[0].remote_addr == asked[-1]
    for error in (LimitExceeded("max_pending_inbound", 1), RuntimeError("admission bug")):
        refuse[:] = [error]
        before = len(asked)
        with pytest.raises(DialError):  # every Initial it retransmits is dropped
            await transports().dial(listener.addrs[0], timeout=0.5)
        assert len(asked) > before and endpoint.handshakes == 0
    # A refusal for good (the gater here) is answered: CONNECTION_REFUSED in an Initial.
    refuse[:] = [ConnectionGated("accept", None, None)]
    started = time.monotonic()
    with pytest.raises(DialError, match="refused the connection"):
        await transports().dial(listener.addrs[0], timeout=10)
    assert time.monotonic() - started < 5 and endpoint.handshakes == 0
    refuse.clear()
    await transports().dial(listener.addrs[0], timeout=5)  # still serving


async def test_with_retry_the_admission_is_asked_after_address_validation(make_host):
    """retry=True: Initials from a source that never answers get a stateless Retry and
    never reach the admission (nothing pending, nothing refused); a real client comes
    back with its token and is admitted then."""
    a = await make_host(limits={"max_pending_inbound": 1}, quic={"retry": True})
    rcmgr = a.swarm.rcmgr
    endpoint = _quic(a)._listeners[0].endpoint
    port = int(a.listen_addrs[0].value_for_protocol("udp"))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as spoofed:
        spoofed.setblocking(False)
        for _ in range(5):
            spoofed.sendto(_stalled_initial(), ("127.0.0.1", port))
        async with asyncio.timeout(5):
            while True:  # a Retry came back: the Initials were handled
                with contextlib.suppress(BlockingIOError):
                    if spoofed.recv(65536)[0] & 0xF0 == 0xF0:
                        break
                await asyncio.sleep(0.005)
    assert rcmgr.system.pending == 0 and not rcmgr.refusals and endpoint.handshakes == 0
    b = await make_host(listen=False)
    conn = await b.connect(a.addrs_with_peer_id[0])
    assert await _echo(b, a.peer_id, b"validated") == b"validated"
    assert conn.peer == a.peer_id and not rcmgr.refusals
