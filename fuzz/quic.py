"""The QUIC fuzz targets: ``Libp2pQuicConnection`` (p2pkit-quic's aioquic machine) fed
hostile datagrams, driven as ``p2pkit_quic.session`` drives it.

QUIC protects every packet (even Initials, with keys any observer can derive from the
connection id), so a mutated datagram almost always dies at decryption: only the
header parser would be fuzzed.  So most inputs are *plaintext frames*, which the adapter
seals into a valid packet for the machine under test (Initial keys from the connection
id; 1-RTT keys taken from a real peer once its handshake is done); the rest are raw
datagrams (header parsing, coalesced packets, decryption failures).  The first byte of
an input says which (:data:`RAW`, :data:`SEALED`); the seeds are a real handshake
transcript between two of our machines, captured in process.

Targets (all outcomes but an exception are acceptable: aioquic turns bad input into a
CONNECTION_CLOSE, which is what we check it does):

* ``quic-server``: a fresh server machine receives one client Initial (the frames of a
  real one: CRYPTO with the ClientHello, PADDING) or a raw datagram, as the endpoint
  hands it over (after its own checks: a raw datagram the endpoint would drop is
  dropped here too).
* ``quic-client``: a fresh client machine, after ``connect``, receives the server's
  Initial (ACK, CRYPTO with the ServerHello) or a raw datagram.
* ``quic-established-server`` / ``-client``: a machine whose handshake with a real
  peer is done receives 1-RTT packets (STREAM, RESET_STREAM, STOP_SENDING, MAX_DATA,
  ACK, HANDSHAKE_DONE...) sealed with its peer's keys; the connection is rebuilt when
  an input closed it, and every :data:`REBUILD` inputs (so a finding is one input on
  a connection in at most a few hundred inputs' state: ``--repro`` replays it on a
  fresh one).
* ``quic-endpoint``: the endpoint's pre-checks of a datagram for no known connection.
"""

from __future__ import annotations

import contextlib
import functools
import random
from collections.abc import Iterator
from dataclasses import dataclass

from aioquic.quic import events
from aioquic.quic.connection import QuicConnectionState
from aioquic.quic.crypto import CryptoContext, CryptoPair
from aioquic.quic.packet import QuicPacketType, QuicProtocolVersion, encode_long_header_first_byte
from aioquic.tls import Epoch

from p2pkit.crypto import generate_private_key
from p2pkit.crypto.tls_certificate import HostCertificate, generate_certificate
from p2pkit_quic.endpoint import (
    opens_connection,
    other_version,
    read_header,
    version_negotiation,
)
from p2pkit_quic.machine import Libp2pQuicConnection, make_configuration
from p2pkit_quic.options import QuicOptions

RAW, SEALED = 0, 1
V1 = QuicProtocolVersion.VERSION_1
SERVER = ("127.0.0.1", 4433)
CLIENT = ("127.0.0.1", 50000)
ODCID = bytes(range(8))  # the client's first destination connection id in sealed inputs
SERVER_CID = bytes(range(8, 16))
CLIENT_CID = bytes(range(16, 24))
"""Every client machine's connection id: sealed ClientHellos name it in their transport
parameters (``initial_source_connection_id``), so it must not change between runs."""
# Small windows and stream credit: a process runs thousands of inputs on one machine.
OPTIONS = QuicOptions(stream_window=64 << 10, connection_window=256 << 10, max_streams=16)
INITIAL_OVERHEAD = 46
"""Bytes of a sealed Initial besides its frames: header (8-byte ids) and AEAD tag."""
REBUILD = 500
"""``quic-established-*`` start from a fresh connection at least this often."""
END_STATES = frozenset(
    {QuicConnectionState.CLOSING, QuicConnectionState.DRAINING, QuicConnectionState.TERMINATED}
)


@functools.cache
def _certificates() -> tuple[HostCertificate, HostCertificate]:
    return (
        generate_certificate(generate_private_key("ed25519")),
        generate_certificate(generate_private_key("ed25519")),
    )


def server_machine(odcid: bytes = ODCID) -> Libp2pQuicConnection:
    config = make_configuration(_certificates()[0], OPTIONS, is_client=False)
    return Libp2pQuicConnection(
        configuration=config, original_destination_connection_id=odcid, options=OPTIONS
    )


def client_machine() -> Libp2pQuicConnection:
    config = make_configuration(_certificates()[1], OPTIONS, is_client=True)
    quic = Libp2pQuicConnection(configuration=config, options=OPTIONS)
    quic._host_cids[0].cid = quic.host_cid = CLIENT_CID
    quic._local_initial_source_connection_id = CLIENT_CID
    quic.connect(SERVER, now=0.0)
    return quic


# -- driving a machine as the session does -------------------------------------------------


def pump(quic: Libp2pQuicConnection, now: float) -> list[bytes]:
    """What ``QuicSession`` does after a datagram: handle events (read and grant credit
    for stream data; a peer's reset ends both halves), transmit, handle the timer."""
    out: list[bytes] = []
    for _ in range(3):
        while (event := quic.next_event()) is not None:
            if isinstance(event, events.StreamDataReceived):
                stream = quic._streams.get(event.stream_id)
                if stream is not None:
                    quic.grant(stream, len(event.data), stream.receiver.starting_offset())
            elif isinstance(event, events.StreamReset | events.StopSendingReceived):
                with contextlib.suppress(Exception):  # as QuicSession.reset_stream
                    quic.reset_stream(event.stream_id, 0)
                with contextlib.suppress(Exception):
                    quic.stop_stream(event.stream_id, 0)
        out.extend(d for d, _ in quic.datagrams_to_send(now))
        timer = quic.get_timer()
        if timer is None or timer > now + 1.0:
            break
        now = timer
        quic.handle_timer(now)
    return out


# -- sealing -----------------------------------------------------------------------------------


def _varint2(n: int) -> bytes:
    return (0x4000 | n).to_bytes(2, "big")


MAX_FRAMES = 16000
"""Frames sealed into one packet at most (its length field is a 2-byte varint)."""


def seal_initial(send: CryptoContext, dcid: bytes, scid: bytes, plain: bytes, pn: int) -> bytes:
    """One Initial packet (4-byte packet number) carrying the frames ``plain``."""
    plain = plain[:MAX_FRAMES]
    first = encode_long_header_first_byte(V1, QuicPacketType.INITIAL, 3)
    header = (
        bytes([first])
        + V1.to_bytes(4, "big")
        + bytes([len(dcid)])
        + dcid
        + bytes([len(scid)])
        + scid
        + b"\x00"  # no token
        + _varint2(4 + len(plain) + 16)
        + pn.to_bytes(4, "big")
    )
    return send.encrypt_packet(header, plain, pn)


def seal_short(send: CryptoContext, dcid: bytes, plain: bytes, pn: int) -> bytes:
    """One 1-RTT packet (key phase 0, 4-byte packet number) carrying ``plain``."""
    header = bytes([0x43]) + dcid + pn.to_bytes(4, "big")
    return send.encrypt_packet(header, plain[:MAX_FRAMES], pn)


def initial_keys(dcid: bytes, is_client: bool) -> CryptoPair:
    pair = CryptoPair()
    pair.setup_initial(dcid, is_client=is_client, version=V1)
    return pair


# -- the transcript (seeds) ----------------------------------------------------------------


@dataclass
class Transcript:
    client_initial_frames: list[bytes]
    server_initial_frames: list[bytes]
    client_1rtt_frames: list[bytes]
    server_1rtt_frames: list[bytes]
    datagrams_to_server: list[bytes]
    datagrams_to_client: list[bytes]


@contextlib.contextmanager
def _recording(plain: list[tuple[bytes, bytes]]) -> Iterator[None]:
    """Record (plain header, plain payload) of every packet sealed meanwhile."""
    stock = CryptoContext.encrypt_packet

    def encrypt(self: CryptoContext, header: bytes, payload: bytes, pn: int) -> bytes:
        plain.append((bytes(header), bytes(payload)))
        return stock(self, header, payload, pn)

    CryptoContext.encrypt_packet = encrypt  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        CryptoContext.encrypt_packet = stock  # type: ignore[method-assign]


def _exchange(
    client: Libp2pQuicConnection, server: Libp2pQuicConnection, now: float
) -> tuple[list[bytes], list[bytes]]:
    """Datagrams back and forth until both sides are quiet."""
    to_server: list[bytes] = []
    to_client: list[bytes] = []
    for _ in range(20):
        out = [d for d, _ in client.datagrams_to_send(now)]
        for d in out:
            server.receive_datagram(d, CLIENT, now)
        back = pump(server, now)
        for d in back:
            client.receive_datagram(d, SERVER, now)
        pump(client, now)
        to_server += out
        to_client += back
        if not out and not back:
            break
    return to_server, to_client


def handshake() -> tuple[Libp2pQuicConnection, Libp2pQuicConnection, list[bytes], list[bytes]]:
    """A client and a server machine whose handshake completed, and its datagrams."""
    client = client_machine()
    first = [d for d, _ in client.datagrams_to_send(0.0)]
    server = server_machine(first[0][6:14])
    for d in first:
        server.receive_datagram(d, CLIENT, 0.0)
    back = pump(server, 0.0)
    for d in back:
        client.receive_datagram(d, SERVER, 0.0)
    pump(client, 0.0)
    to_server, to_client = _exchange(client, server, 0.01)
    return client, server, first + to_server, back + to_client


def _to(cid: bytes, header: bytes) -> bool:
    """Is the packet whose plain ``header`` this is addressed to connection id ``cid``?"""
    if header[0] & 0x80:  # long header: first byte, version, dcid length, dcid
        return header[6 : 6 + header[5]] == cid
    return header[1 : 1 + len(cid)] == cid


@functools.cache
def transcript() -> Transcript:
    plain: list[tuple[bytes, bytes]] = []
    with _recording(plain):
        client, server, to_server, to_client = handshake()
        assert server._handshake_complete, "the transcript's handshake did not complete"
        marker = len(plain)
        for sid in (0, 4, 8):  # streams: data, FIN, a reset; credit and ACKs follow
            client.send_stream_data(sid, b"x" * 300, end_stream=sid == 4)
        _exchange(client, server, 0.02)
        server.send_stream_data(0, b"y" * 200)  # an answer, and a stream of its own
        server.send_stream_data(1, b"z" * 100, end_stream=True)
        client.reset_stream(8, 0)
        client.stop_stream(0, 0)
        _exchange(client, server, 0.03)
    ours = client.host_cid

    def initial(header: bytes) -> bool:
        return header[0] & 0xB0 == 0x80  # long header, type Initial (v1)

    handshake_part = plain[:marker]
    return Transcript(
        client_initial_frames=[
            p.rstrip(b"\x00") for h, p in handshake_part if initial(h) and not _to(ours, h)
        ],
        server_initial_frames=[p for h, p in handshake_part if initial(h) and _to(ours, h)],
        client_1rtt_frames=[p for h, p in plain[marker:] if not h[0] & 0x80 and not _to(ours, h)],
        server_1rtt_frames=[p for h, p in plain if not h[0] & 0x80 and _to(ours, h)],
        datagrams_to_server=to_server,
        datagrams_to_client=to_client,
    )


def _tag(kind: int, items: list[bytes]) -> list[bytes]:
    return [bytes([kind]) + item for item in items]


def server_seeds() -> list[bytes]:
    t = transcript()
    return _tag(SEALED, t.client_initial_frames) + _tag(RAW, t.datagrams_to_server)


def client_seeds() -> list[bytes]:
    t = transcript()
    return _tag(SEALED, t.server_initial_frames) + _tag(RAW, t.datagrams_to_client)


def established_server_seeds() -> list[bytes]:
    t = transcript()
    return _tag(SEALED, t.client_1rtt_frames) + _tag(RAW, t.datagrams_to_server[-2:])


def established_client_seeds() -> list[bytes]:
    t = transcript()
    return _tag(SEALED, t.server_1rtt_frames) + _tag(RAW, t.datagrams_to_client[-2:])


# -- adapters ----------------------------------------------------------------------------------


def _split(data: bytes) -> tuple[int, bytes]:
    return (data[0] & 1, data[1:]) if data else (RAW, b"")


def quic_server(data: bytes, rng: random.Random) -> None:
    kind, body = _split(data)
    if kind == SEALED:
        plain = body + bytes(max(0, 1200 - INITIAL_OVERHEAD - len(body)))  # PADDING: 1200
        body = seal_initial(initial_keys(ODCID, is_client=True).send, ODCID, CLIENT_CID, plain, 0)
        server = server_machine()
    else:
        header = None if other_version(body) else read_header(body)
        if header is None or not opens_connection(header, len(body)):
            return  # the endpoint would drop it before any machine exists
        server = server_machine(header.destination_cid)
    server.receive_datagram(body, CLIENT, 0.0)
    pump(server, 0.0)


def quic_client(data: bytes, rng: random.Random) -> None:
    kind, body = _split(data)
    client = client_machine()
    client.datagrams_to_send(0.0)  # its Initial left
    if kind == SEALED:
        send = initial_keys(client._peer_cid.cid, is_client=False).send
        body = seal_initial(send, client.host_cid, SERVER_CID, body, rng.randrange(4))
    client.receive_datagram(body, SERVER, 0.0)
    pump(client, 0.0)


@dataclass
class _Established:
    """One handshake-complete machine per process and role, and its peer's 1-RTT keys."""

    quic: Libp2pQuicConnection
    peer_send: CryptoContext
    pn: int = 1000  # above what the peer's machine used
    used: int = 0
    now: float = 1.0


_established: dict[bool, _Established] = {}


def quic_established(data: bytes, rng: random.Random, server_side: bool) -> None:
    state = _established.get(server_side)
    if state is None or state.quic._state in END_STATES or state.used >= REBUILD:
        client, server, _, _ = handshake()
        ours, peer = (server, client) if server_side else (client, server)
        state = _established[server_side] = _Established(ours, peer._cryptos[Epoch.ONE_RTT].send)
    state.used += 1
    state.pn += 1
    state.now += 0.001
    kind, body = _split(data)
    quic = state.quic
    if kind == SEALED:
        body = seal_short(state.peer_send, quic.host_cid, body, state.pn)
    quic.receive_datagram(body, CLIENT if server_side else SERVER, state.now)
    pump(quic, state.now)


def quic_endpoint(data: bytes, rng: random.Random) -> None:
    """The endpoint's checks of a datagram for no known connection (no machine)."""
    if other_version(data):
        version_negotiation(data)
    elif (header := read_header(data)) is not None:
        opens_connection(header, len(data))
