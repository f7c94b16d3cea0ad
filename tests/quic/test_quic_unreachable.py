"""A QUIC dial to a closed UDP port is refused at once, as a TCP dial is: the ICMP
"port unreachable" is read off the socket's error queue (Linux, p2pkit_quic.udp), and
it disturbs nothing else on the socket."""

from __future__ import annotations

import asyncio
import socket
import sys
import time

import pytest
from multiaddr import Multiaddr

from p2pkit.errors import DialError
from p2pkit.network import MuxedTransportConnection
from p2pkit_quic.udp import UdpSocket

from .conftest import LISTEN

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="IP_RECVERR is Linux's")


def _closed_port(family: socket.AddressFamily, host: str) -> int:
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize(
    ("family", "host", "kind"),
    [(socket.AF_INET, "127.0.0.1", "ip4"), (socket.AF_INET6, "::1", "ip6")],
)
async def test_a_dial_to_a_closed_port_is_refused_at_once(transports, family, host, kind):
    client = transports()
    port = _closed_port(family, host)
    started = time.monotonic()
    with pytest.raises(DialError, match="refused the connection"):
        await client.dial(Multiaddr(f"/{kind}/{host}/udp/{port}/quic-v1"), timeout=10)
    assert time.monotonic() - started < 2  # not the 10 s timeout
    await asyncio.sleep(0.05)
    assert not any(endpoint.sessions() for endpoint in client._endpoints)


async def test_an_unreachable_port_disturbs_nothing_else_on_the_socket(transports):
    """Dials to closed ports from the socket an established connection uses: the
    connection goes on, every byte arrives (a send that the kernel fails to report an
    earlier ICMP error is made again), and the socket does not spin on its error."""
    server, client = transports(), transports()
    accepted: list[MuxedTransportConnection] = []
    await client.listen(Multiaddr(LISTEN), lambda conn: None)  # dials share this socket
    listener = await server.listen(Multiaddr(LISTEN), accepted.append)
    conn = await client.dial(listener.addrs[0], timeout=5)
    async with asyncio.timeout(5):
        while not accepted:
            await asyncio.sleep(0.01)
    out = await conn.muxed.open_stream()
    payload = b"x" * 200_000
    writer = asyncio.ensure_future(out.write(payload))
    for _ in range(5):
        port = _closed_port(socket.AF_INET, "127.0.0.1")
        with pytest.raises(DialError, match="refused"):
            await client.dial(Multiaddr(f"/ip4/127.0.0.1/udp/{port}/quic-v1"), timeout=5)
    await writer
    await out.close_write()
    inbound = await accepted[0].muxed.accept_stream()
    received = b""
    async with asyncio.timeout(10):
        while chunk := await inbound.read():
            received += chunk
    assert received == payload
    conn.muxed.abort()


async def test_a_pending_icmp_error_neither_drops_a_send_nor_spins_the_socket():
    """The kernel reports an ICMP error to the next call on the socket: a send made
    before the socket is read fails with it (and is made again), and the error queue is
    then all that is readable (drained, not polled in a loop)."""
    unreachable: list[object] = []
    udp = UdpSocket.bind("127.0.0.1", 0, socket.AF_INET, lambda d, a: None, unreachable.append)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as live:
        live.bind(("127.0.0.1", 0))
        live.settimeout(1)
        closed = ("127.0.0.1", _closed_port(socket.AF_INET, "127.0.0.1"))
        udp.send_many([(b"to nobody", closed)])
        time.sleep(0.05)  # the ICMP error arrives while the loop is not reading
        udp.send_many([(b"to a live socket", live.getsockname())])
        assert live.recv(100) == b"to a live socket"
        cpu = time.process_time()
        await asyncio.sleep(0.3)
        assert time.process_time() - cpu < 0.1
        assert unreachable == [closed]
    udp.close()
