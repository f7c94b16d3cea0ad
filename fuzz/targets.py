"""The fuzz targets: one small adapter per decoder or sans-IO machine.

Every call into p2pkit's parsers and machines is in this file (QUIC's, which need
packets sealed for the machine under test, in ``fuzz/quic.py``), one adapter per target,
so an API rename (``is_client`` -> ``is_initiator``, what ``receive_data`` returns)
touches only these lines.  An adapter feeds one fuzzed input (split into chunks by
``rng`` for the stream machines, as a socket would deliver it) and plays the
application's part where the machine needs one (accepting streams, reporting data
consumed), so the fuzzer reaches the states after the first frame.

What an adapter may raise: ``P2PError`` subclasses (typed errors: a peer sent garbage),
plus the target's ``allowed`` (documented below).  Anything else is a finding, except the
``KNOWN`` ones, which are open issues being fixed elsewhere (listed, never hidden).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Protocol

from p2pkit.addrs import split_peer, to_multiaddr
from p2pkit.crypto import private_key_from_protobuf, public_key_from_protobuf
from p2pkit.crypto.tls_certificate import decode_signed_key, verify_certificate
from p2pkit.multistream import messages as msg
from p2pkit.multistream import sansio as ms
from p2pkit.peer import PeerId
from p2pkit.protobuf import decode_fields, iter_fields
from p2pkit.protocols.identify import IdentifyInfo, read_messages
from p2pkit.protocols.peer_record import open_signed_peer_record
from p2pkit.varint import decode_uvarint
from p2pkit_mplex import session as mplex
from p2pkit_noise.framing import FrameDecoder
from p2pkit_noise.handshake import NoiseHandshake, static_public_key
from p2pkit_noise.payload import SIGNATURE_PREFIX, HandshakePayload, verify_payload
from p2pkit_websocket import frames as wsf
from p2pkit_websocket.handshake import ClientHandshake, ServerHandshake
from p2pkit_yamux import events as yev
from p2pkit_yamux.session import YamuxSession

from . import corpus, quic

Run = Callable[[bytes, random.Random], None]

PROTOCOLS = ["/yamux/1.0.0", "/mplex/6.7.0"]
NOISE_KEY = bytes(range(1, 33))  # the transport key of the frame decoder target
NOISE_STATIC = bytes(range(32, 64))  # our Noise static key in the handshake targets


@dataclass(frozen=True)
class Target:
    name: str
    run: Run
    seeds: Callable[[], list[bytes]]
    allowed: tuple[type[BaseException], ...] = ()
    """Untyped exceptions this target documents as acceptable (besides P2PError)."""
    smoke: int | None = None
    """Inputs in ``--smoke`` when the default would not fit its budget (a target that
    runs a TLS handshake step per input); None: the default."""


def chunks(data: bytes, rng: random.Random) -> list[bytes]:
    """``data`` as a socket might deliver it: whole, or cut at 1-3 random points."""
    if len(data) < 2 or rng.random() < 0.5:
        return [data]
    cuts = sorted(rng.randrange(1, len(data)) for _ in range(rng.randrange(1, 4)))
    return [data[i:j] for i, j in zip([0, *cuts], [*cuts, len(data)], strict=True)]


# -- muxers ------------------------------------------------------------------------------


def yamux_receive(data: bytes, rng: random.Random, is_initiator: bool) -> None:
    session = YamuxSession(is_initiator=is_initiator)
    session.open_stream(now=0.0)  # so that frames for our first stream id mean something
    for chunk in chunks(data, rng):
        for ev in session.receive_data(chunk, now=0.0):
            if isinstance(ev, yev.StreamOpened) and ev.stream_id in session.streams:
                session.accept(ev.stream_id)
            elif isinstance(ev, yev.DataReceived) and ev.stream_id in session.streams:
                session.consumed(ev.stream_id, len(ev.data), now=0.0)
        session.data_to_send()


def mplex_receive(data: bytes, rng: random.Random, is_initiator: bool) -> None:
    session = mplex.MplexSession(is_initiator=is_initiator)
    session.open_stream()
    for chunk in chunks(data, rng):
        for ev in session.receive_data(chunk):
            if isinstance(ev, mplex.DataReceived) and session.has_stream(ev.key):
                session.consumed(ev.key, len(ev.data))
        session.data_to_send()


# -- multistream-select ------------------------------------------------------------------


class _Machine(Protocol):
    """What every sans-IO machine with a finite exchange offers (docs/sansio.md)."""

    @property
    def done(self) -> bool: ...

    @property
    def leftover(self) -> bytes: ...

    def receive_data(self, data: bytes) -> object: ...

    def data_to_send(self) -> bytes: ...


def drive(m: _Machine, data: bytes, rng: random.Random) -> None:
    """Feed ``data`` in socket-like chunks until the exchange is done, as a shell would."""
    m.data_to_send()
    for chunk in chunks(data, rng):
        if m.done:
            break
        m.receive_data(chunk)
        m.data_to_send()
    _ = m.leftover


def ms_initiator(data: bytes, rng: random.Random) -> None:
    lazy = rng.random() < 0.3
    drive(ms.Initiator(PROTOCOLS[:1] if lazy else PROTOCOLS, lazy=lazy), data, rng)


def ms_responder(data: bytes, rng: random.Random) -> None:
    drive(ms.Responder(lambda p: p in PROTOCOLS, eager_header=rng.random() < 0.5), data, rng)


def ms_ls(data: bytes, rng: random.Random) -> None:
    drive(ms.ListRequest(), data, rng)


def ms_messages(data: bytes, rng: random.Random) -> None:
    reader = msg.MessageReader()
    for chunk in chunks(data, rng):
        reader.feed(chunk)
        while reader.next_message() is not None:
            pass
    msg.decode_ls_response(data)


# -- Noise -------------------------------------------------------------------------------


def noise_frames(data: bytes, rng: random.Random) -> None:
    decoder = FrameDecoder(NOISE_KEY)
    for chunk in chunks(data, rng):
        bytes(decoder.feed(chunk))
    decoder.feed_eof()


_IDENTITY_SIG: dict[str, bytes] = {}


def _noise_machine(initiator: bool) -> NoiseHandshake:
    identity = corpus.keys()["ed25519"]
    if "sig" not in _IDENTITY_SIG:  # sign once: the target is the parser, not Ed25519
        _IDENTITY_SIG["sig"] = identity.sign(SIGNATURE_PREFIX + static_public_key(NOISE_STATIC))
    return NoiseHandshake(
        is_initiator=initiator,
        identity=identity,
        muxers=PROTOCOLS,
        static_key=NOISE_STATIC,
        identity_sig=_IDENTITY_SIG["sig"],
    )


def noise_handshake(data: bytes, rng: random.Random, initiator: bool) -> None:
    drive(_noise_machine(initiator), data, rng)


def noise_payload(data: bytes, rng: random.Random) -> None:
    verify_payload(HandshakePayload.decode(data), static_public_key(NOISE_STATIC))


def noise_transcripts(initiator_receives: bool) -> list[bytes]:
    """The messages a real peer sends in a handshake with one of our machines."""
    a, b = _noise_machine(True), _noise_machine(False)
    m1 = a.data_to_send()
    b.receive_data(m1)
    m2 = b.data_to_send()
    a.receive_data(m2)
    m3 = a.data_to_send()
    return [m2, m2[:40]] if initiator_receives else [m1, m1 + m3, m3]


# -- TLS ---------------------------------------------------------------------------------


def tls_certificate(data: bytes, rng: random.Random) -> None:
    verify_certificate(data)


def tls_signed_key(data: bytes, rng: random.Random) -> None:
    public_key, _sig = decode_signed_key(data)
    public_key_from_protobuf(public_key)


# -- protobuf, identify, records, keys, ids, addresses -----------------------------------


def protobuf(data: bytes, rng: random.Random) -> None:
    decode_fields(data)
    for _ in iter_fields(data):
        pass


class _Stream:
    """Just enough of a MuxedStream for ``read_messages``: reads return the chunks."""

    def __init__(self, parts: list[bytes]) -> None:
        self._parts = parts

    async def read(self, n: int = -1) -> bytes:
        return self._parts.pop(0) if self._parts else b""


def _run_sync(coro: Coroutine[Any, Any, list[bytes]]) -> list[bytes]:
    """Drive a coroutine that never suspends (our fake stream answers at once)."""
    try:
        coro.send(None)
    except StopIteration as stop:
        result: list[bytes] = stop.value
        return result
    coro.close()
    raise AssertionError("read_messages suspended on a stream that never blocks")


def identify(data: bytes, rng: random.Random) -> None:
    for message in _run_sync(read_messages(_Stream(chunks(data, rng)))):  # type: ignore[arg-type]
        info = IdentifyInfo()
        info.merge(message)
        info.multiaddrs()
        info.observed()
        if info.public_key is not None:
            public_key_from_protobuf(info.public_key)
        if info.signed_peer_record is not None:
            open_signed_peer_record(info.signed_peer_record)


def peer_record(data: bytes, rng: random.Random) -> None:
    open_signed_peer_record(data)


def public_key(data: bytes, rng: random.Random) -> None:
    key = public_key_from_protobuf(data)
    PeerId.from_public_key(key)


def private_key(data: bytes, rng: random.Random) -> None:
    private_key_from_protobuf(data).public_key.to_protobuf()


def varint(data: bytes, rng: random.Random) -> None:
    decode_uvarint(data, 0)
    if data:
        decode_uvarint(data, rng.randrange(len(data)))


def peer_id_bytes(data: bytes, rng: random.Random) -> None:
    PeerId.from_bytes(data).extract_public_key()


def peer_id_string(data: bytes, rng: random.Random) -> None:
    PeerId.from_string(data.decode("latin-1"))


def multiaddr(data: bytes, rng: random.Random) -> None:
    """Where we wrap the multiaddr library: addresses from identify, and ``split_peer``
    on text (the CLI, config and dial paths go through ``to_multiaddr`` first)."""
    info = IdentifyInfo(listen_addrs=[data], observed_addr=data)
    info.multiaddrs()
    info.observed()
    split_peer(to_multiaddr(data.decode("latin-1")))


# -- WebSocket ---------------------------------------------------------------------------


def ws_frames(data: bytes, rng: random.Random, server: bool) -> None:
    reader = wsf.FrameReader(expect_masked=server, max_message_size=1 << 16)
    for chunk in chunks(data, rng):
        for ev in reader.receive_data(memoryview(chunk)):
            if isinstance(ev, wsf.Data):
                bytes(ev.unmasked())


def ws_handshake_server(data: bytes, rng: random.Random) -> None:
    hs = ServerHandshake()
    for chunk in chunks(data, rng):
        if hs.receive_data(memoryview(chunk)) is not None:
            return


def ws_handshake_client(data: bytes, rng: random.Random) -> None:
    hs = ClientHandshake("127.0.0.1:1", tls=False)
    for chunk in chunks(data, rng):
        if hs.receive_data(memoryview(chunk)) is not None:
            return


TARGETS: dict[str, Target] = {
    t.name: t
    for t in [
        Target("yamux-initiator", lambda d, r: yamux_receive(d, r, True), corpus.yamux_streams),
        Target("yamux-responder", lambda d, r: yamux_receive(d, r, False), corpus.yamux_streams),
        Target("mplex-initiator", lambda d, r: mplex_receive(d, r, True), corpus.mplex_streams),
        Target("mplex-responder", lambda d, r: mplex_receive(d, r, False), corpus.mplex_streams),
        Target("multistream-initiator", ms_initiator, corpus.multistream_to_initiator),
        Target("multistream-responder", ms_responder, corpus.multistream_to_responder),
        Target("multistream-ls", ms_ls, corpus.multistream_ls_answers),
        Target("multistream-reader", ms_messages, corpus.multistream_ls_answers),
        Target("noise-frames", noise_frames, lambda: corpus.noise_frames(NOISE_KEY)),
        Target(
            "noise-handshake-initiator",
            lambda d, r: noise_handshake(d, r, True),
            lambda: noise_transcripts(True),
        ),
        Target(
            "noise-handshake-responder",
            lambda d, r: noise_handshake(d, r, False),
            lambda: noise_transcripts(False),
        ),
        Target(
            "noise-payload",
            noise_payload,
            lambda: corpus.noise_payloads(static_public_key(NOISE_STATIC)),
        ),
        Target("tls-certificate", tls_certificate, corpus.tls_certificates),
        Target("tls-signed-key", tls_signed_key, corpus.tls_signed_keys),
        Target("protobuf", protobuf, corpus.protobufs),
        Target("identify", identify, corpus.identify_streams),
        Target("peer-record", peer_record, corpus.signed_records),
        Target("public-key", public_key, corpus.public_keys),
        Target("private-key", private_key, corpus.private_keys),
        Target("varint", varint, corpus.varints),
        Target("peer-id-bytes", peer_id_bytes, corpus.peer_id_bytes),
        Target("peer-id-string", peer_id_string, corpus.peer_id_strings),
        Target("multiaddr", multiaddr, corpus.multiaddrs),
        Target("ws-frames-server", lambda d, r: ws_frames(d, r, True), corpus.ws_client_frames),
        Target("ws-frames-client", lambda d, r: ws_frames(d, r, False), corpus.ws_server_frames),
        Target("ws-handshake-server", ws_handshake_server, corpus.ws_requests),
        Target("ws-handshake-client", ws_handshake_client, corpus.ws_responses),
        Target("quic-server", quic.quic_server, quic.server_seeds, smoke=8000),
        Target("quic-client", quic.quic_client, quic.client_seeds, smoke=4000),
        Target(
            "quic-established-server",
            lambda d, r: quic.quic_established(d, r, True),
            quic.established_server_seeds,
            smoke=2000,
        ),
        Target(
            "quic-established-client",
            lambda d, r: quic.quic_established(d, r, False),
            quic.established_client_seeds,
            smoke=2000,
        ),
        Target("quic-endpoint", quic.quic_endpoint, quic.server_seeds),
    ]
}
