"""Received byte ranges: bisected, and bounded (p2pkit_quic.ranges).

Stock aioquic scans a stream's received ranges from the start for every frame, so a
peer sending one-byte frames at every other offset made a listener's CPU quadratic in
the number of frames (16,000 frames, 80 KB on the wire: 11 s).  The ranges are now
bisected, and more than 1000 gaps in a stream (100 in a CRYPTO stream, before anyone
is authenticated) close that connection.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time

import pytest
from aioquic import tls
from aioquic.quic import events
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection, QuicConnectionError
from aioquic.quic.rangeset import RangeSet
from aioquic.quic.recovery import QuicPacketNumberWindow
from hypothesis import given, settings
from hypothesis import strategies as st
from multiaddr import Multiaddr

from p2pkit.protocols.perf import PROTOCOL_ID as PERF
from p2pkit.protocols.perf import perf
from p2pkit_quic.machine import MAX_ACK_FRAMES_PER_PACKET
from p2pkit_quic.ranges import (
    MAX_CONNECTION_GAPS,
    MAX_STREAM_GAPS,
    FastRanges,
    GapBudget,
    PacketNumberWindow,
    ReceivedRanges,
)

from .conftest import LISTEN, send_gapped, still_echoes, wait_closed

spans = st.lists(
    st.tuples(st.integers(0, 300), st.integers(1, 20)).map(lambda t: (t[0], t[0] + t[1])),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(adds=spans, subtracts=spans)
def test_fast_ranges_are_aioquics_ranges(adds, subtracts):
    """The same ranges as aioquic's RangeSet after any adds (and subtracts between)."""
    ours, theirs = FastRanges(), RangeSet()
    for i, (start, stop) in enumerate(adds):
        ours.add(start, stop)
        theirs.add(start, stop)
        if i < len(subtracts):
            ours.subtract(*subtracts[i])
            theirs.subtract(*subtracts[i])
        assert list(ours) == list(theirs)


def test_received_ranges_refuse_a_gap_too_many():
    ranges = ReceivedRanges(max_gaps=3, frame_type=8, budget=GapBudget(100, lambda: 0))
    for offset in (0, 2, 4):
        ranges.add(offset)
    ranges.add(1)  # fills a gap: fewer ranges, fine
    ranges.add(5, 7)  # extends one: fine
    assert list(ranges) == [range(0, 3), range(4, 7)]
    ranges.add(8)
    with pytest.raises(QuicConnectionError) as info:
        ranges.add(10)
    assert "too many gaps" in info.value.reason_phrase


def test_the_connection_budget_counts_again_only_past_its_limit():
    """Inserts beyond the budget's upper bound trigger a count of the real ranges: a
    connection whose gaps were merged away gets room again; one that holds them does
    not."""
    held = [0]
    budget = GapBudget(4, lambda: held[0])
    assert all(budget.take() for _ in range(4))
    held[0] = 1  # the others were merged or delivered meanwhile
    assert budget.take() and budget.used == 2
    held[0] = 4
    assert budget.take() and budget.take()  # used 3, 4: within the bound
    assert not budget.take()  # counted: 4 held, no room


async def test_gaps_over_many_streams_add_up_to_the_connection_budget(make_host):
    """Six streams of 800 gaps each (each under the stream bound, 4800 in all): the
    listener closes the connection at the connection's 4096."""
    a = await make_host()
    b = await make_host(listen=False)
    conn = await b.connect(a.addrs_with_peer_id[0])
    (server_conn,) = a.connections(b.peer_id)
    for _ in range(6):
        send_gapped(conn, 1_600)  # 800 gaps each
    conn.muxed.schedule_transmit()  # type: ignore[attr-defined]
    await wait_closed(server_conn)
    assert 6 * 800 > MAX_CONNECTION_GAPS > MAX_STREAM_GAPS > 800


async def test_a_stream_full_of_gaps_closes_its_connection_only(make_host):
    """A dialer sends 16,000 one-byte frames, every other byte missing: the listener
    closes that connection at 1000 gaps, at once, and serves another peer."""
    a = await make_host()
    b = await make_host(listen=False)
    conn = await b.connect(a.addrs_with_peer_id[0])
    (server_conn,) = a.connections(b.peer_id)
    send_gapped(conn, 32_000)
    cpu = time.process_time()
    conn.muxed.schedule_transmit()  # type: ignore[attr-defined]
    await wait_closed(server_conn)
    assert time.process_time() - cpu < 3.0  # was 11 s of CPU in this process
    assert MAX_STREAM_GAPS == 1000
    await still_echoes(a, await make_host(listen=False))


async def test_a_client_hello_full_of_gaps_is_refused_before_any_handshake(transports):
    """A raw client sends its ClientHello as one-byte CRYPTO frames, every other byte
    missing: the listener closes at 100 gaps (CONNECTION_CLOSE, "too many gaps"), keeps
    no handshake, and the next client gets in."""
    server = transports(handshake_timeout=30.0)
    accepted: list[object] = []
    listener = await server.listen(Multiaddr(LISTEN), accepted.append)
    endpoint = listener.endpoint  # type: ignore[attr-defined]
    target = ("127.0.0.1", int(listener.addrs[0].value_for_protocol("udp")))
    config = QuicConfiguration(is_client=True, alpn_protocols=["libp2p"], verify_mode=ssl.CERT_NONE)
    client = QuicConnection(configuration=config)
    client.connect(target, now=time.monotonic())
    sender = client._crypto_streams[tls.Epoch.INITIAL].sender
    hello = sender._buffer_stop
    assert hello > 400  # room for more than 100 gaps
    for offset in range(0, hello, 2):
        sender._pending.subtract(offset, offset + 1)
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        for data, _ in client.datagrams_to_send(now=time.monotonic()):
            sock.sendto(data, target)
        async with asyncio.timeout(5):
            while client._close_event is None:  # aioquic's event once draining ends
                data = await loop.sock_recv(sock, 65536)
                client.receive_datagram(data, target, now=time.monotonic())
    closed: events.ConnectionTerminated = client._close_event
    assert "too many gaps" in closed.reason_phrase
    async with asyncio.timeout(5):
        while endpoint.handshakes or endpoint.sessions:
            await asyncio.sleep(0.01)
    good = transports()
    conn = await good.dial(listener.addrs[0], timeout=5)
    conn.muxed.abort()


async def test_ack_frames_past_two_in_a_packet_are_not_acted_on(make_host):
    """A dialer packs up to 64 ACK frames into each packet during an 8 MB download:
    the listener acts on at most two per packet (aioquic copies its list of packets
    in flight for each), and the transfer completes."""
    a = await make_host()
    b = await make_host(listen=False)
    conn = await b.connect(a.addrs_with_peer_id[0])
    client = conn.muxed.quic  # type: ignore[attr-defined]
    write_ack = client._write_ack_frame
    counts = {"sent": 0, "packets": 0, "acted": 0}

    def many_acks(*, builder, space, now):  # aioquic passes keywords
        for _ in range(64):
            if builder.remaining_flight_space < 64:
                break
            write_ack(builder=builder, space=space, now=now)
            counts["sent"] += 1

    client._write_ack_frame = many_acks
    (server_conn,) = a.connections(b.peer_id)
    server = server_conn.muxed.quic  # type: ignore[attr-defined]
    payload_received, on_ack = server._payload_received, server._loss.on_ack_received

    def count_packet(*args, **kwargs):
        counts["packets"] += 1
        return payload_received(*args, **kwargs)

    def count_acted(**kwargs):
        counts["acted"] += 1
        return on_ack(**kwargs)

    server._payload_received = count_packet
    server._loss.on_ack_received = count_acted
    result = await perf(await conn.new_stream([PERF]), 0, 8_000_000)
    assert result.download_bytes == 8_000_000
    assert counts["sent"] > 8 * counts["packets"], counts  # the dialer did pack them
    assert counts["acted"] <= MAX_ACK_FRAMES_PER_PACKET * counts["packets"], counts


packet_numbers = st.lists(
    st.one_of(
        st.integers(0, 600),  # anywhere
        st.integers(0, 40).map(lambda n: -n),  # just below the highest so far (see below)
    ),
    max_size=400,
)


@settings(max_examples=300, deadline=None)
@given(numbers=packet_numbers, probes=st.lists(st.integers(0, 700), max_size=50))
def test_packet_number_window_answers_as_aioquics(numbers, probes):
    """The same ``in`` answers as aioquic's QuicPacketNumberWindow after every ``add``
    (a negative draw is a number that far below the highest added: late, reordered),
    and few ranges: never more than the window holds."""
    ours, theirs = PacketNumberWindow(), QuicPacketNumberWindow()
    highest = 0
    for n in numbers:
        pn = n if n >= 0 else max(0, highest + n)
        highest = max(highest, pn)
        ours.add(pn)
        theirs.add(pn)
        for probe in (pn - 1, pn, pn + 1, *probes[:5]):
            assert (probe in ours) == (probe in theirs), probe
        assert len(ours._ranges) <= 65
    for probe in range(0, 700):
        assert (probe in ours) == (probe in theirs), probe


def test_packet_number_window_in_order_is_one_range():
    window = PacketNumberWindow()
    for pn in range(10_000):
        window.add(pn)
    assert len(window._ranges) == 1 and 9_999 in window and 10_000 not in window
