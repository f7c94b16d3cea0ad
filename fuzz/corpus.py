"""Seed inputs for every target, built by our own encoders (valid messages to mutate).

Random bytes rarely get past a decoder's first check; mutations of valid messages reach
the deep branches (a key whose algorithm OID is one byte off, a frame whose length is
wrong by one).  Everything here is built once per process and is deterministic except
for key material (keys are generated: the fuzzer needs valid signatures, not fixed ones).
"""

from __future__ import annotations

import datetime
import functools

from multiaddr import Multiaddr

from p2pkit.crypto import PrivateKey, generate_private_key
from p2pkit.multistream import messages as ms
from p2pkit.peer import PeerId
from p2pkit.protobuf import encode_bytes_field, encode_varint_field
from p2pkit.protocols.identify import IdentifyInfo
from p2pkit.protocols.peer_record import make_signed_peer_record
from p2pkit.varint import encode_uvarint
from p2pkit_mplex import frames as mfr
from p2pkit_noise.payload import NoiseExtensions, make_payload
from p2pkit_tls.certificate import encode_signed_key, generate_certificate
from p2pkit_yamux import frames as yfr

KEY_TYPES = ("ed25519", "secp256k1", "ecdsa", "rsa")
ADDRS = [Multiaddr("/ip4/127.0.0.1/tcp/4001"), Multiaddr("/ip6/::1/udp/9/quic-v1")]


@functools.cache
def keys() -> dict[str, PrivateKey]:
    """One identity of every key type (RSA at its smallest accepted size: speed)."""
    out = {}
    for kt in KEY_TYPES:
        out[kt] = generate_private_key(kt, bits=2048) if kt == "rsa" else generate_private_key(kt)
    return out


def peer_of(key: PrivateKey) -> PeerId:
    return PeerId.from_public_key(key.public_key)


def public_keys() -> list[bytes]:
    return [k.public_key.to_protobuf() for k in keys().values()]


def private_keys() -> list[bytes]:
    """Weighted: decoding an RSA private key runs cryptography's key check (about 0.1 s
    for 2048 bits here) and secp256k1 derives the public key (about 2 ms); at equal
    weights 20,000 inputs would take minutes, so RSA is 1 seed in 100, secp256k1 19."""
    k = keys()
    weights = {"ed25519": 40, "ecdsa": 40, "secp256k1": 19, "rsa": 1}
    return [k[kt].to_protobuf() for kt, n in weights.items() for _ in range(n)]


def peer_id_bytes() -> list[bytes]:
    return [peer_of(k).to_bytes() for k in keys().values()]


def peer_id_strings() -> list[bytes]:
    out = []
    for k in keys().values():
        pid = peer_of(k)
        out += [str(pid).encode(), pid.to_cid().encode()]
    return out


def varints() -> list[bytes]:
    return [encode_uvarint(v) for v in (0, 1, 127, 128, 300, 2**32, 2**63 - 1, 2**64 - 1)]


def protobufs() -> list[bytes]:
    return [
        encode_varint_field(1, 7) + encode_bytes_field(2, b"hello"),
        encode_bytes_field(3, encode_bytes_field(1, b"nested")) + encode_varint_field(9, 2**40),
        bytes([(7 << 3) | 1]) + b"\x01" * 8 + bytes([(8 << 3) | 5]) + b"\x02" * 4,
        *public_keys(),
    ]


def signed_records() -> list[bytes]:
    return [make_signed_peer_record(k, peer_of(k), ADDRS, seq=5) for k in keys().values()]


def identify_messages() -> list[bytes]:
    out = []
    for k, rec in zip(keys().values(), signed_records(), strict=True):
        info = IdentifyInfo(
            protocol_version="ipfs/0.1.0",
            agent_version="p2pkit/fuzz",
            public_key=k.public_key.to_protobuf(),
            listen_addrs=[a.to_bytes() for a in ADDRS],
            observed_addr=ADDRS[0].to_bytes(),
            protocols=["/ipfs/id/1.0.0", "/ipfs/ping/1.0.0"],
            signed_peer_record=rec,
        )
        out.append(info.encode())
    return out


def identify_streams() -> list[bytes]:
    """What an identify responder writes: uvarint-length-prefixed messages."""
    return [encode_uvarint(len(m)) + m for m in identify_messages()]


def multiaddrs() -> list[bytes]:
    out = [a.to_bytes() for a in ADDRS]
    for k in keys().values():
        out.append(f"/ip4/10.0.0.1/tcp/1/p2p/{peer_of(k)}".encode())
        out.append(f"/ip4/10.0.0.1/tcp/1/p2p/{peer_of(k).to_cid()}".encode())
    out += [b"/dns4/example.com/tcp/443/wss", b"/ip6/::1/tcp/0"]
    return out


def noise_payloads(static_public: bytes) -> list[bytes]:
    """Payloads signing ``static_public`` (the key the target verifies against)."""
    out = [make_payload(k, static_public, ["/yamux/1.0.0"]).encode() for k in keys().values()]
    out.append(NoiseExtensions((b"\x12\x20" + bytes(32),), ("/mplex/6.7.0",)).encode())
    return out


def noise_frames(encrypt: bytes) -> list[bytes]:
    """Transport frames as the peer would send them (``encrypt``: their key)."""
    from p2pkit_noise.framing import FrameEncoder

    enc = FrameEncoder(encrypt)
    return [bytes(enc.encrypt(b"")), bytes(enc.encrypt(b"x" * 100)), bytes(enc.encrypt(b"y"))]


def tls_certificates() -> list[bytes]:
    now = datetime.datetime.now(datetime.UTC)
    return [generate_certificate(k, now=now).der for k in keys().values()]


def tls_signed_keys() -> list[bytes]:
    return [encode_signed_key(k.public_key.to_protobuf(), b"\x01" * 64) for k in keys().values()]


def yamux_streams() -> list[bytes]:
    """Frame sequences a yamux peer sends (stream 1: the client's, 2: the server's)."""
    syn, ack, fin, rst = yfr.FLAG_SYN, yfr.FLAG_ACK, yfr.FLAG_FIN, yfr.FLAG_RST
    return [
        yfr.window_update(1, 0, syn) + yfr.data_frame(1, b"hello") + yfr.data_frame(1, b"", fin),
        yfr.window_update(2, 0, syn) + yfr.data_frame(2, b"x" * 40, syn) + yfr.ping(7, syn),
        yfr.window_update(1, 1 << 20, ack) + yfr.data_frame(1, b"abc", ack | fin),
        yfr.ping(3, ack) + yfr.window_update(3, 0, syn) + yfr.window_update(3, 0, rst),
        yfr.data_frame(1, b"z" * 300, syn) + yfr.go_away(yfr.GO_AWAY_NORMAL),
    ]


def mplex_streams() -> list[bytes]:
    f = mfr.Flag
    return [
        mfr.encode_frame(0, f.NEW_STREAM, b"stream-0")
        + mfr.encode_frame(0, f.MESSAGE_INITIATOR, b"hello")
        + mfr.encode_frame(0, f.CLOSE_INITIATOR),
        mfr.encode_frame(0, f.MESSAGE_RECEIVER, b"to ours") + mfr.encode_frame(0, f.CLOSE_RECEIVER),
        mfr.encode_frame(5, f.NEW_STREAM) + mfr.encode_frame(5, f.RESET_INITIATOR),
        mfr.encode_frame(1, f.NEW_STREAM, b"")
        + mfr.encode_frame(1, f.MESSAGE_INITIATOR, b"q" * 200),
    ]


def multistream_to_initiator() -> list[bytes]:
    return [
        ms.encode_messages(ms.PROTOCOL_ID, "/yamux/1.0.0"),
        ms.encode_messages(ms.PROTOCOL_ID, "na", "/mplex/6.7.0") + b"leftover",
        ms.encode_messages(ms.PROTOCOL_ID) + ms.encode_message("na"),
    ]


def multistream_to_responder() -> list[bytes]:
    return [
        ms.encode_messages(ms.PROTOCOL_ID, "/yamux/1.0.0"),
        ms.encode_messages(ms.PROTOCOL_ID, "ls", "/nope/1", "/mplex/6.7.0") + b"data",
        ms.encode_messages(ms.PROTOCOL_ID, "/a", "/b", "/c"),
    ]


def multistream_ls_answers() -> list[bytes]:
    return [
        ms.HEADER + ms.encode_ls_response(["/a/1", "/yamux/1.0.0"]),
        ms.HEADER + ms.encode_ls_response([]),
        ms.encode_messages(ms.PROTOCOL_ID, "na"),
    ]


def _ws_frames(mask: bool) -> list[bytes]:
    from p2pkit_websocket.frames import OP_PING, OP_PONG, FrameWriter

    w = FrameWriter(mask=mask, max_frame_size=300)
    data = b"".join(bytes(p) for p in w.message([b"x" * 1000]))
    return [
        data,
        w.control(OP_PING, b"hi") + b"".join(bytes(p) for p in w.message([b"abc"])),
        w.control(OP_PONG) + w.close(1000, "bye"),
    ]


def ws_client_frames() -> list[bytes]:
    """Frames a WebSocket client sends (masked)."""
    return _ws_frames(True)


def ws_server_frames() -> list[bytes]:
    """Frames a WebSocket server sends (unmasked)."""
    return _ws_frames(False)


def ws_requests() -> list[bytes]:
    """Upgrade requests, a good one first."""
    from p2pkit_websocket.handshake import ClientHandshake

    good = ClientHandshake("127.0.0.1:1", tls=False).request
    return [good, good.replace(b"GET / ", b"GET /x "), b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"]


def ws_responses() -> list[bytes]:
    """Upgrade responses (the accept key does not match our random one: refused)."""
    from p2pkit_websocket.handshake import ServerHandshake

    req = (
        b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    result = ServerHandshake().receive_data(memoryview(req))
    assert result is not None
    return [result.response, b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"]
