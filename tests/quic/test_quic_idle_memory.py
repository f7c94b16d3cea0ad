"""What an idle, established QUIC connection holds (the README's "Memory and CPU per idle
connection"): each structure that is shared, created lazily or dropped, and that the
connection still behaves after it.  aioquic's side with the two machines of a connection
driven by hand (sans-IO, as in ``test_quic_release.py``); the asyncio shell with real
connections over loopback."""

from __future__ import annotations

import asyncio
import sys

import pytest
from aioquic import tls
from aioquic._buffer import Buffer
from aioquic.quic import events
from aioquic.quic.connection import QuicConnection, QuicConnectionState
from aioquic.quic.crypto import NoCallback
from aioquic.quic.packet import QuicErrorCode, QuicFrameType
from multiaddr import Multiaddr

from p2pkit.crypto.tls_certificate import generate_certificate
from p2pkit.network import MuxedTransportConnection
from p2pkit_quic.lean import OVERSIZED, FrameHandlers, compacted
from p2pkit_quic.loopback import UNPACED
from p2pkit_quic.machine import Libp2pQuicConnection
from p2pkit_quic.release import _NONE_AFTER_HANDSHAKE, DISCARDED_SPACE, TLS_AFTER_HANDSHAKE
from p2pkit_quic.timers import TIDY_DELAY
from p2pkit_quic.waiters import Waiters
from tests.quic.test_quic_release import CLIENT, SERVER, _exchange, _handshake

from .conftest import LISTEN, quic_pair

AIOQUIC_ATTRIBUTES = 85
"""What aioquic's constructor puts in a connection's instance dict: the most a 128-entry
dict table holds (one more and CPython doubles the table)."""


def test_our_attributes_stay_out_of_aioquics_instance_dict():
    client, server, _, _ = _handshake()
    assert _exchange(client, server, b"ping") == b"ping"
    ours = set(Libp2pQuicConnection.__slots__)
    for side in (client, server):
        assert not ours & set(vars(side)), "an attribute of ours landed in the dict"
        assert len(vars(side)) <= AIOQUIC_ATTRIBUTES
        assert side.remote_public_key is not None and side.consumed == 0


def _seal(sender: Libp2pQuicConnection, receiver: Libp2pQuicConnection, frames: bytes) -> bytes:
    """A 1-RTT packet carrying ``frames`` as ``sender`` would seal it for ``receiver``
    (a packet number above any the sender used)."""
    pn = sender._packet_number + 1000
    sender._packet_number += 1
    header = bytes([0x43]) + receiver.host_cid + pn.to_bytes(4, "big")
    return sender._cryptos[tls.Epoch.ONE_RTT].send.encrypt_packet(header, frames, pn)


def test_frame_handlers_are_bound_at_first_use_as_aioquic_binds_them():
    client, server, _, _ = _handshake()
    table = server._QuicConnection__frame_handlers
    assert isinstance(table, FrameHandlers)
    assert 0x01 not in table and len(table) < 10  # PING never arrived
    server.receive_datagram(_seal(client, server, b"\x01"), CLIENT, 1.0)
    assert table[0x01][0] == server._handle_ping_frame
    assert server._spaces[tls.Epoch.ONE_RTT].ack_at is not None  # answered
    # Every frame type answers as in aioquic's own table: the same handler (ours where
    # we override it), the same epochs.
    stock = QuicConnection(
        configuration=server.configuration,
        original_destination_connection_id=server.original_destination_connection_id,
    )._QuicConnection__frame_handlers
    for frame_type, (handler, epochs) in stock.items():
        bound, allowed = table[frame_type]
        assert bound.__self__ is server and allowed == epochs
        assert bound.__func__ is getattr(Libp2pQuicConnection, handler.__func__.__name__)
    assert table[0x02][0].__func__ is Libp2pQuicConnection._handle_ack_frame


def test_an_unknown_frame_type_still_closes_the_connection():
    client, server, _, _ = _handshake()
    assert 0x1F not in server._QuicConnection__frame_handlers
    server.receive_datagram(_seal(client, server, b"\x1f"), CLIENT, 1.0)
    assert server._close_event is not None
    assert server._close_event.error_code == QuicErrorCode.FRAME_ENCODING_ERROR
    assert 0x1F not in server._QuicConnection__frame_handlers


def test_empty_queues_are_no_deques_until_something_is_queued():
    client, server, _, _ = _handshake()
    for side in (client, server):
        assert side._datagrams_pending == () and type(side._events) is list
        for path in side._network_paths:
            assert path.local_challenges == () and path.remote_challenges == ()
    server.send_datagram_frame(b"datagram")  # (libp2p sends none: still queued as before)
    assert list(server._datagrams_pending) == [b"datagram"]


def test_events_are_taken_in_order_and_one_by_one_as_before():
    client, server, _, _ = _handshake()
    for _ in range(3):
        client.send_ping(7)
    for datagram, _ in client.datagrams_to_send(1.0):
        server.receive_datagram(datagram, CLIENT, 1.0)
    for datagram, _ in server.datagrams_to_send(1.05):  # (after aioquic's ACK delay)
        client.receive_datagram(datagram, SERVER, 1.05)
    stream_id = client.get_next_available_stream_id()
    client.send_stream_data(stream_id, b"a", end_stream=True)
    for datagram, _ in client.datagrams_to_send(1.1):
        server.receive_datagram(datagram, CLIENT, 1.1)
    first = client.next_event()
    assert isinstance(first, events.PingAcknowledged)
    rest = client.take_events()
    assert [type(e) for e in rest] == [events.PingAcknowledged] * 2
    assert client.take_events() == [] and client.next_event() is None
    received = server.take_events()
    assert isinstance(received[0], events.StreamDataReceived) and received[0].data == b"a"


def test_a_rebound_peer_address_is_still_validated_by_path_challenge():
    """The client's packets come from a new address (NAT rebinding): the server moves to
    that path and challenges it; the client's queue of challenges to answer and the
    server's of challenges sent become deques on first use; the path is validated."""
    client, server, _, _ = _handshake()
    rebound = ("127.0.0.1", 3333)
    client.send_ping(1)
    for datagram, _ in client.datagrams_to_send(1.0):
        server.receive_datagram(datagram, rebound, 1.0)
    path = server._network_paths[0]
    assert path.addr == rebound and not path.is_validated
    assert path.local_challenges == ()  # lightened when the path was added
    now = 1.0
    for _ in range(3):
        now += 0.01
        for datagram, addr in server.datagrams_to_send(now):
            assert addr == rebound
            client.receive_datagram(datagram, SERVER, now)
        for datagram, _ in client.datagrams_to_send(now):
            server.receive_datagram(datagram, rebound, now)
    assert path.is_validated and server._close_event is None and client._close_event is None
    assert _exchange(client, server, b"after") == b"after"


def _crypto_frame(message: bytes, offset: int = 0) -> bytes:
    buf = Buffer(capacity=len(message) + 16)
    buf.push_uint_var(QuicFrameType.CRYPTO)
    buf.push_uint_var(offset)
    buf.push_uint_var(len(message))
    buf.push_bytes(message)
    return buf.data


def test_the_tls_context_keeps_no_handshake_secrets():
    client, server, _, _ = _handshake()
    for side in (client, server):
        context = side.tls
        assert type(context) is tls.Context
        kept = {*TLS_AFTER_HANDSHAKE, *_NONE_AFTER_HANDSHAKE, "handshake_extensions"}
        assert set(vars(context)) <= kept
        assert context.key_schedule is None and context.received_extensions is None
        assert context.state in (tls.State.CLIENT_POST_HANDSHAKE, tls.State.SERVER_POST_HANDSHAKE)
        assert context.alpn_negotiated == "libp2p" and not context.session_resumed
        assert side._remote_version_information is None
        one_rtt = side._cryptos[tls.Epoch.ONE_RTT]
        for keys in (one_rtt.recv, one_rtt.send):
            assert keys._setup_cb is NoCallback and keys._teardown_cb is NoCallback


def test_a_session_ticket_is_still_dropped_and_other_tls_messages_refused():
    """After the handshake TLS only parses a server's NewSessionTicket (and drops it: we
    keep no tickets); any message to the server is unexpected.  As before the release."""
    client, server, _, _ = _handshake()
    ticket = Buffer(capacity=256)
    tls.push_new_session_ticket(
        ticket, tls.NewSessionTicket(ticket_lifetime=60, ticket_nonce=b"n", ticket=b"t" * 32)
    )
    client.receive_datagram(_seal(server, client, _crypto_frame(ticket.data)), SERVER, 1.0)
    assert client._close_event is None
    assert _exchange(client, server, b"still up") == b"still up"
    server.receive_datagram(_seal(client, server, _crypto_frame(ticket.data)), CLIENT, 1.0)
    assert server._close_event is not None
    unexpected = QuicErrorCode.CRYPTO_ERROR + tls.AlertDescription.unexpected_message
    assert server._close_event.error_code == unexpected


def test_a_split_session_ticket_is_reassembled_and_a_garbled_one_refused():
    """The TLS context after the handshake still reassembles a message split over
    CRYPTO frames (then drops the ticket), and a message that does not parse closes the
    connection with decode_error, as before the release."""
    client, server, _, _ = _handshake()
    ticket = Buffer(capacity=256)
    tls.push_new_session_ticket(
        ticket, tls.NewSessionTicket(ticket_lifetime=60, ticket_nonce=b"n", ticket=b"t" * 32)
    )
    data = ticket.data
    client.receive_datagram(_seal(server, client, _crypto_frame(data[:10])), SERVER, 1.0)
    client.receive_datagram(_seal(server, client, _crypto_frame(data[10:], 10)), SERVER, 1.0)
    assert client._close_event is None and client.tls._receive_buffer == b""
    garbled = bytes([tls.HandshakeType.NEW_SESSION_TICKET, 0, 0, 3, 1, 2, 3])
    client.receive_datagram(_seal(server, client, _crypto_frame(garbled, len(data))), SERVER, 1.1)
    assert client._close_event is not None
    decode_error = QuicErrorCode.CRYPTO_ERROR + tls.AlertDescription.decode_error
    assert client._close_event.error_code == decode_error


def test_a_key_update_still_works_both_ways():
    client, server, _, _ = _handshake()
    for a, b in ((client, server), (server, client)):
        phase = a._cryptos[tls.Epoch.ONE_RTT].send.key_phase
        a.request_key_update()
        assert _exchange(a, b, b"new keys") == b"new keys"
        assert _exchange(b, a, b"answer") == b"answer"
        assert a._cryptos[tls.Epoch.ONE_RTT].send.key_phase != phase
        assert b._cryptos[tls.Epoch.ONE_RTT].recv.key_phase != phase


# -- the session (asyncio shell) -------------------------------------------------------------


async def test_waiters_wake_every_waiter_once_and_forget_the_cancelled():
    waiters = Waiters()
    assert waiters._futures is None  # nothing held while nobody waits
    woken: list[int] = []

    async def wait(i: int) -> None:
        await waiters.wait()
        woken.append(i)

    tasks = [asyncio.ensure_future(wait(i)) for i in range(3)]
    await asyncio.sleep(0)
    tasks[1].cancel()
    await asyncio.sleep(0)
    assert waiters._futures is not None and len(waiters._futures) == 2
    waiters.wake()
    await asyncio.gather(tasks[0], tasks[2])
    assert sorted(woken) == [0, 2] and waiters._futures is None
    waiters.wake()  # nobody waits: nothing to do
    again = asyncio.ensure_future(wait(9))
    await asyncio.sleep(0)
    assert not again.done()  # a wake before waiting is not remembered (as Event.clear())
    waiters.wake()
    await again


async def test_an_idle_session_keeps_its_state_in_slots_and_no_empty_containers(transports):
    client, server = await quic_pair(transports(), transports())
    async with asyncio.timeout(10):
        out = await client.muxed.open_stream()
        await out.write(b"x" * 100_000)  # enough to be counted as unsent, then acknowledged
        await out.close()
        inc = await server.muxed.accept_stream()
        assert len(await inc.readexactly(100_000)) == 100_000
        await inc.close()
        assert await out.read() == b""
        await asyncio.sleep(0.1)
        for side in (client, server):
            session = side.muxed
            session.count_unsent()  # what a later write's room check does
            assert vars(session) == {}, "an attribute outside the slots"
            assert session._blocked_writers is None and session._sending is None
            assert session._incoming == [] and session._accept_waiters._futures is None
    client.muxed.abort()
    server.muxed.abort()


async def test_accepts_and_wait_closed_from_several_tasks(transports):
    """Two accept_stream callers (one cancelled meanwhile) and two wait_closed callers,
    on the Waiters that replaced the session's asyncio.Events."""
    client, server = await quic_pair(transports(), transports())
    session = server.muxed
    async with asyncio.timeout(10):
        accepts = [asyncio.ensure_future(session.accept_stream()) for _ in range(3)]
        closes = [asyncio.ensure_future(session.wait_closed()) for _ in range(2)]
        await asyncio.sleep(0.01)
        accepts[0].cancel()
        for payload in (b"one", b"two"):
            stream = await client.muxed.open_stream()
            await stream.write(payload)
        got = await asyncio.gather(accepts[1], accepts[2])
        assert sorted([await s.readexactly(3) for s in got]) == [b"one", b"two"]
        assert not any(c.done() for c in closes)
        client.muxed.abort()
        await asyncio.gather(*closes)
        assert session.is_closed
        await session.wait_closed()  # (returns at once once closed)


async def test_a_stream_holds_no_buffer_while_nothing_is_unread(transports):
    client, server = await quic_pair(transports(), transports())
    async with asyncio.timeout(10):
        out = await client.muxed.open_stream()
        await out.write(b"hello world")
        inc = await server.muxed.accept_stream()
        assert inc._chunks is not None  # (the first frame is buffered until read)
        assert await inc.readexactly(5) == b"hello"  # a partial read keeps the rest
        assert await inc.readexactly(6) == b" world"
        assert inc._chunks is None
        inc.unread(b"again")
        assert await inc.read() == b"again" and inc._chunks is None
        await out.write(b"x" * 5000)
        await out.close()
        assert await inc.readexactly(5000) == b"x" * 5000
        assert await inc.read() == b"" and inc._chunks is None
        assert server.muxed.memory.held == 0
    client.muxed.abort()
    server.muxed.abort()


# -- discarded packet spaces -------------------------------------------------------------------


def _pristine(space: object) -> bool:
    return (
        space is DISCARDED_SPACE
        and DISCARDED_SPACE.discarded
        and DISCARDED_SPACE.expected_packet_number == 0
        and DISCARDED_SPACE.largest_received_packet == -1
        and not DISCARDED_SPACE.sent_packets
        and DISCARDED_SPACE.ack_at is None
    )


def test_discarded_packet_spaces_are_one_shared_read_only_space():
    client, server, sent_by_client, sent_by_server = _handshake()
    for side in (client, server):
        for epoch in (tls.Epoch.INITIAL, tls.Epoch.HANDSHAKE):
            assert _pristine(side._spaces[epoch])
        assert side._loss.spaces.count(DISCARDED_SPACE) == 2
        assert side._spaces[tls.Epoch.ONE_RTT] in side._loss.spaces
    # Late handshake packets both ways (as in test_quic_release.py): dropped, and the
    # shared space is untouched.
    for datagram in sent_by_client:
        server.receive_datagram(datagram, CLIENT, 0.5)
    for datagram in sent_by_server:
        client.receive_datagram(datagram, SERVER, 0.5)
    assert client._close_event is None and server._close_event is None
    assert _pristine(server._spaces[tls.Epoch.INITIAL])
    with pytest.raises(AttributeError):
        DISCARDED_SPACE.ack_at = 1.0
    with pytest.raises(AttributeError):
        DISCARDED_SPACE.received_packets.add(1)  # type: ignore[attr-defined]


def test_a_lost_packet_is_retransmitted_beside_the_discarded_spaces():
    """Loss recovery walks every packet space (timers, lost packets, probes)."""
    client, server, _, _ = _handshake()
    stream_id = client.get_next_available_stream_id()
    client.send_stream_data(stream_id, b"lost once", end_stream=True)
    assert client.datagrams_to_send(1.0)  # dropped on the way
    received = b""
    now = 1.0
    for _ in range(20):
        timer = client.get_timer()
        assert timer is not None
        now = max(now + 0.001, timer)
        client.handle_timer(now)
        for datagram, _ in client.datagrams_to_send(now):
            server.receive_datagram(datagram, CLIENT, now)
        received += b"".join(
            e.data for e in server.take_events() if isinstance(e, events.StreamDataReceived)
        )
        if received:
            break
    assert received == b"lost once"
    assert _pristine(client._spaces[tls.Epoch.HANDSHAKE])


def test_a_connection_closes_and_terminates_beside_the_discarded_spaces():
    client, server, _, _ = _handshake()
    client.close(error_code=0)
    for datagram, _ in client.datagrams_to_send(1.0):
        server.receive_datagram(datagram, CLIENT, 1.0)
    for side in (client, server):
        now = 1.0
        while side._state != QuicConnectionState.TERMINATED:
            timer = side.get_timer()
            assert timer is not None
            now = max(now, timer)
            side.handle_timer(now)
        assert side._close_event is not None and side._close_event.error_code == 0
    assert _pristine(client._spaces[tls.Epoch.INITIAL])


# -- shared by every connection of an endpoint ---------------------------------------------------


async def test_connections_share_their_configuration_and_loopback_pacer(transports):
    server_t, client_t = transports(), transports()
    accepted: list[MuxedTransportConnection] = []
    listener = await server_t.listen(Multiaddr(LISTEN), accepted.append)
    async with asyncio.timeout(5):
        dialed = [await client_t.dial(listener.addrs[0], timeout=5) for _ in range(2)]
        while len(accepted) < 2:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)  # (the datagram size grows once confirmed)
        for side in (dialed, accepted):
            first, second = (conn.muxed.quic for conn in side)
            assert first.configuration is second.configuration
            assert first.configuration.is_client == (side is dialed)
            assert first._loss._pacer is UNPACED and second._loss._pacer is UNPACED
        stream = await dialed[1].muxed.open_stream()
        await stream.write(b"shared")
        inbound = await accepted[1].muxed.accept_stream()
        assert await inbound.readexactly(6) == b"shared"
    endpoint = dialed[0].muxed.endpoint
    config = endpoint.configuration(is_client=True)
    client_t._certificate = generate_certificate(client_t.private_key)  # a new certificate
    renewed = endpoint.configuration(is_client=True)
    assert renewed is not config and renewed.certificate is client_t._certificate.certificate
    for conn in (*dialed, *accepted):
        conn.muxed.abort()
    await listener.close()


# -- after a burst ---------------------------------------------------------------------------------


@pytest.mark.parametrize("keep_alive", [0.3, 15.0], ids=["keep-alive-0.3s", "default"])
async def test_tables_grown_by_a_burst_shrink_once_it_is_over(transports, keep_alive):
    """200 short streams each way: aioquic's and the session's stream tables, and the
    set of streams with bytes to count, grow to hold them; the timer's housekeeping
    gives them back once they are nearly empty: at a keep-alive (0.3 s), or TIDY_DELAY
    after the last stream ended (with the default 15 s keep-alive, the tables and the
    set of 200 ids, 16 KB, were kept 15 s or more after the burst)."""
    options = {"keep_alive": keep_alive}
    client, server = await quic_pair(transports(**options), transports(**options))

    async def echo_all() -> None:
        while True:
            stream = await server.muxed.accept_stream()
            data = b""
            while chunk := await stream.read():
                data += chunk
            await stream.write(data)
            await stream.close()

    echo = asyncio.ensure_future(echo_all())
    async with asyncio.timeout(20):
        streams = [await client.muxed.open_stream() for _ in range(200)]
        for stream in streams:
            await stream.write(b"x" * 100)
            await stream.close_write()
        for stream in streams:
            assert await stream.readexactly(100) == b"x" * 100
            assert await stream.read() == b""
        del streams
        for side in (client, server):
            assert sys.getsizeof(side.muxed.quic._streams) > OVERSIZED  # (grown)

        def shrunk() -> bool:
            for side in (client, server):
                session = side.muxed
                if session._sending is not None or len(session.quic._streams):
                    return False
                for table in (session._streams, session.quic._streams):
                    if sys.getsizeof(table) > OVERSIZED:
                        return False
            return True

        async with asyncio.timeout(TIDY_DELAY + 4):  # (well before a 15 s keep-alive)
            while not shrunk():
                await asyncio.sleep(0.05)
        stream = await client.muxed.open_stream()  # and the connection goes on
        await stream.write(b"after")
        await stream.close_write()
        assert await stream.read() == b"after"
    echo.cancel()
    client.muxed.abort()
    server.muxed.abort()


def test_compacted_copies_only_a_nearly_empty_oversized_dict():
    grown = {i: i for i in range(200)}
    for i in range(195):
        del grown[i]
    small = compacted(grown)
    assert small == grown and small is not grown and sys.getsizeof(small) < OVERSIZED
    assert compacted(small) is small
    big = {i: i for i in range(200)}
    assert compacted(big) is big  # (full: nothing to give back)
