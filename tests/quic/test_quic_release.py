"""What a QUIC connection lets go of after its handshake (p2pkit_quic.release): the two
machines of a connection driven by hand (sans-IO), so every datagram can be replayed."""

from __future__ import annotations

import pytest
from aioquic import tls
from aioquic.quic import events

from p2pkit.crypto import generate_private_key
from p2pkit.crypto.tls_certificate import generate_certificate
from p2pkit_quic import QuicOptions
from p2pkit_quic.machine import Libp2pQuicConnection, make_configuration
from p2pkit_quic.release import NO_KEYS, POST_HANDSHAKE_CRYPTO_BUFFER

CLIENT, SERVER = ("127.0.0.1", 1111), ("127.0.0.1", 2222)


def _handshake() -> tuple[Libp2pQuicConnection, Libp2pQuicConnection, list[bytes], list[bytes]]:
    """A confirmed connection, and every datagram each side sent on the way."""
    options = QuicOptions()
    client = Libp2pQuicConnection(
        configuration=make_configuration(
            generate_certificate(generate_private_key()), options, is_client=True
        ),
        options=options,
    )
    client.connect(SERVER, 0.0)
    server = Libp2pQuicConnection(
        configuration=make_configuration(
            generate_certificate(generate_private_key()), options, is_client=False
        ),
        options=options,
        original_destination_connection_id=client.original_destination_connection_id,
    )
    sent_by_client: list[bytes] = []
    sent_by_server: list[bytes] = []
    now = 0.0
    for _ in range(8):
        now += 0.001
        for datagram, _ in client.datagrams_to_send(now):
            sent_by_client.append(datagram)
            server.receive_datagram(datagram, CLIENT, now)
        for datagram, _ in server.datagrams_to_send(now):
            sent_by_server.append(datagram)
            client.receive_datagram(datagram, SERVER, now)
        for side in (client, server):
            while (event := side.next_event()) is not None:
                if isinstance(event, events.HandshakeCompleted):
                    side.release_handshake_state()
    assert client._handshake_confirmed and server._handshake_confirmed
    return client, server, sent_by_client, sent_by_server


def _exchange(a: Libp2pQuicConnection, b: Libp2pQuicConnection, payload: bytes) -> bytes:
    """Send ``payload`` on a new stream from ``a``; what ``b`` received on it."""
    stream_id = a.get_next_available_stream_id()
    a.send_stream_data(stream_id, payload, end_stream=True)
    for datagram, _ in a.datagrams_to_send(1.0):
        b.receive_datagram(datagram, CLIENT if a._is_client else SERVER, 1.0)
    received = b""
    while (event := b.next_event()) is not None:
        if isinstance(event, events.StreamDataReceived) and event.stream_id == stream_id:
            received += event.data
    return received


def test_a_confirmed_connection_keeps_only_its_one_rtt_state():
    client, server, _, _ = _handshake()
    for side in (client, server):
        assert set(side._crypto_streams) == {tls.Epoch.ONE_RTT}
        assert set(side._crypto_buffers) == {tls.Epoch.ONE_RTT}
        for epoch in (tls.Epoch.INITIAL, tls.Epoch.HANDSHAKE, tls.Epoch.ZERO_RTT):
            assert side._cryptos[epoch] is NO_KEYS
        assert all(pair is NO_KEYS for pair in side._cryptos_initial.values())
        assert side._cryptos[tls.Epoch.ONE_RTT].send.is_valid()
        assert side._crypto_buffers[tls.Epoch.ONE_RTT].capacity <= POST_HANDSHAKE_CRYPTO_BUFFER
        for handshake_only in ("_x25519_private_key", "_ec_private_keys", "_peer_certificate"):
            assert getattr(side.tls, handshake_only, None) in (None, [])
    assert not NO_KEYS.send.is_valid() and not NO_KEYS.recv.is_valid()


@pytest.mark.parametrize("victim", ["client", "server"])
def test_late_handshake_packets_are_dropped_and_the_connection_goes_on(victim):
    """Every Initial and Handshake datagram of the handshake, replayed after it was
    confirmed (a peer's retransmissions, or an attacker's copies), is dropped: no
    error, no close, and streams still work both ways."""
    client, server, sent_by_client, sent_by_server = _handshake()
    if victim == "server":
        for datagram in sent_by_client:
            server.receive_datagram(datagram, CLIENT, 0.5)
    else:
        for datagram in sent_by_server:
            client.receive_datagram(datagram, SERVER, 0.5)
    for side in (client, server):
        assert side._close_event is None
        while side.next_event() is not None:
            pass
    assert _exchange(client, server, b"ping") == b"ping"
    assert _exchange(server, client, b"pong") == b"pong"
    assert NO_KEYS.recv.secret is None and NO_KEYS.send.secret is None  # still no keys
