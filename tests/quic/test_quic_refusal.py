"""A refused QUIC client hears CONNECTION_REFUSED at once, and refusing costs bounded work."""

from __future__ import annotations

import asyncio
import socket
import ssl

import pytest
from aioquic.buffer import Buffer
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection
from aioquic.quic.packet import QuicPacketType, pull_quic_header
from multiaddr import Multiaddr

from p2pkit.errors import DialError
from p2pkit.gater import ConnectionGated
from p2pkit_quic.refusal import RATE, RefusalBudget, connection_refused

from .conftest import LISTEN


def _initial() -> bytes:
    """A valid client Initial with a fresh connection id (aioquic's client machine)."""
    config = QuicConfiguration(is_client=True, alpn_protocols=["libp2p"], verify_mode=ssl.CERT_NONE)
    quic = QuicConnection(configuration=config)
    quic.connect(("127.0.0.1", 9), now=0.0)
    return quic.datagrams_to_send(now=0.0)[0][0]


def test_budget_allows_rate_per_second():
    budget = RefusalBudget(rate=10)
    assert sum(budget.take(0.0) for _ in range(50)) == 10  # the burst
    assert sum(budget.take(0.5) for _ in range(50)) == 5  # half a second refills half
    assert sum(budget.take(10.0) for _ in range(50)) == 10  # never above the burst


def test_refusal_answers_the_client_it_is_for():
    """The close is an Initial to the client's connection id, smaller than the Initial
    it answers (no amplification), and ends the client's machine with 0x2."""
    config = QuicConfiguration(is_client=True, alpn_protocols=["libp2p"], verify_mode=ssl.CERT_NONE)
    client = QuicConnection(configuration=config)
    client.connect(("127.0.0.1", 9), now=0.0)
    initial = client.datagrams_to_send(now=0.0)[0][0]
    header = pull_quic_header(Buffer(data=initial), host_cid_length=8)
    close = connection_refused(header)
    answer = pull_quic_header(Buffer(data=close), host_cid_length=8)
    assert answer.packet_type == QuicPacketType.INITIAL
    assert answer.destination_cid == header.source_cid and len(close) < len(initial)
    client.receive_datagram(close, ("127.0.0.1", 9), now=0.1)
    event = client._close_event
    assert event is not None and event.error_code == 0x2


async def test_a_flood_of_refused_initials_gets_bounded_answers(transports):
    """Every Initial refused for good (the gater): 3 x RATE distinct Initials at once get
    at most RATE closes plus what the bucket refills meanwhile; the listener then
    refuses a real client at once and, once allowed, accepts it."""
    server = transports()
    refusing = [True]

    class Ticket:
        def close(self) -> None:
            pass

    def admit(local: object, remote: object) -> Ticket:
        if refusing:
            raise ConnectionGated("accept", None, remote)
        return Ticket()

    accepted: list[object] = []
    listener = await server.listen(Multiaddr(LISTEN), accepted.append, admit=admit)
    port = int(listener.addrs[0].value_for_protocol("udp"))
    initials = [_initial() for _ in range(int(3 * RATE))]
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as raw:
        raw.setblocking(False)
        raw.bind(("127.0.0.1", 0))
        start = loop.time()
        for datagram in initials:
            raw.sendto(datagram, ("127.0.0.1", port))
        answers = 0
        async with asyncio.timeout(10):
            while loop.time() - start < 1.0:
                try:
                    data = raw.recv(65536)
                except BlockingIOError:
                    await asyncio.sleep(0.01)
                    continue
                assert len(data) < 1200
                answers += 1
        took = loop.time() - start
    assert 1 <= answers <= RATE * (1 + took) + 1
    with pytest.raises(DialError, match="refused the connection"):
        await transports().dial(listener.addrs[0], timeout=10)
    refusing.clear()
    await transports().dial(listener.addrs[0], timeout=5)
    async with asyncio.timeout(5):
        while not accepted:
            await asyncio.sleep(0.01)
