"""What an idle, established QUIC connection holds (the README's "Memory and CPU per idle
connection"): each structure that is shared, created lazily or dropped, and that the
connection still behaves after it.  The two machines of a connection are driven by hand
(sans-IO), as in ``test_quic_release.py``."""

from __future__ import annotations

from aioquic import tls
from aioquic.quic.connection import QuicConnection
from aioquic.quic.packet import QuicErrorCode

from p2pkit_quic.lean import FrameHandlers
from p2pkit_quic.machine import Libp2pQuicConnection
from tests.quic.test_quic_release import CLIENT, _exchange, _handshake

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
