"""The sans-IO XX handshake: both roles, every key type, failures, early muxer matrix."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pkit.crypto import PrivateKey
from p2pkit.errors import HandshakeError, InvalidSignature, PeerIdMismatch
from p2pkit.peer import PeerId
from p2pkit_noise import (
    HandshakeCompleted,
    InvalidHandshakePayload,
    NoiseHandshake,
    NoiseHandshakeError,
    NoMuxerOverlap,
    select_muxer,
)
from p2pkit_noise.framing import FrameDecoder, FrameEncoder

YAMUX = "/yamux/1.0.0"
MPLEX = "/mplex/6.7.0"

Identity = Callable[..., PrivateKey]


def pid(key: PrivateKey) -> PeerId:
    return PeerId.from_public_key(key.public_key)


def step(hs: NoiseHandshake, data: bytes) -> bytes:
    """Feed ``data``; return what the machine has to send then."""
    hs.receive_data(data)
    return hs.data_to_send()


def run(i: NoiseHandshake, r: NoiseHandshake) -> tuple[NoiseHandshake, NoiseHandshake]:
    m1 = i.data_to_send()
    assert r.data_to_send() == b""
    m2 = step(r, m1)
    [done] = i.receive_data(m2)
    assert done == HandshakeCompleted(i.result)
    m3 = i.data_to_send()
    assert i.done
    assert step(r, m3) == b""
    assert r.done
    return i, r


def pair(
    identity: Identity,
    *,
    ikey: str = "ed25519",
    rkey: str = "ed25519",
    imux: Sequence[str] | None = None,
    rmux: Sequence[str] | None = None,
    expected: PeerId | None = None,
) -> tuple[NoiseHandshake, NoiseHandshake]:
    a, b = identity(ikey, 0), identity(rkey, 1)
    i = NoiseHandshake(is_initiator=True, identity=a, muxers=imux, expected_peer=expected)
    r = NoiseHandshake(is_initiator=False, identity=b, muxers=rmux)
    return i, r


def test_every_key_type_both_roles(identity: Identity, key_type: str) -> None:
    for ikey, rkey in [(key_type, "ed25519"), ("ed25519", key_type)]:
        a, b = identity(ikey, 0), identity(rkey, 1)
        i, r = run(*pair(identity, ikey=ikey, rkey=rkey, expected=pid(b)))
        assert i.result.remote_peer == pid(b)
        assert i.result.remote_public_key == b.public_key
        assert r.result.remote_peer == pid(a)
        assert r.result.remote_public_key == a.public_key
        # The two directions' keys match crosswise, and differ from each other.
        assert i.result.send_key == r.result.recv_key
        assert i.result.recv_key == r.result.send_key
        assert i.result.send_key != i.result.recv_key
        assert i.leftover == r.leftover == b""


def test_message_sizes_and_framing(identity: Identity) -> None:
    i, r = pair(identity)
    m1 = i.data_to_send()
    # Message 1 is the 32-byte ephemeral key, empty payload, 2-byte BE length.
    assert m1[:2] == b"\x00\x20" and len(m1) == 34
    m2 = step(r, m1)
    assert int.from_bytes(m2[:2], "big") == len(m2) - 2
    # e (32) + encrypted s (32 + 16) + encrypted payload (+16).
    assert len(m2) - 2 > 32 + 48 + 16


def test_transport_keys_work_with_the_framer(identity: Identity) -> None:
    i, r = run(*pair(identity))
    enc = FrameEncoder(i.result.send_key, i.result.send_nonce)
    dec = FrameDecoder(r.result.recv_key, r.result.recv_nonce)
    assert bytes(dec.feed(enc.encrypt(b"hello"))) == b"hello"
    enc = FrameEncoder(r.result.send_key)
    dec = FrameDecoder(i.result.recv_key)
    assert bytes(dec.feed(enc.encrypt(b"world"))) == b"world"


def test_byte_at_a_time_and_leftover(identity: Identity) -> None:
    i, r = pair(identity)
    m1 = i.data_to_send()
    m2 = b"".join(step(r, m1[k : k + 1]) for k in range(len(m1)))
    m3 = b"".join(step(i, m2[k : k + 1]) for k in range(len(m2)))
    assert i.done
    extra = FrameEncoder(i.result.send_key).encrypt(b"early data")
    assert step(r, m3 + extra) == b""
    assert r.done
    assert r.leftover == bytes(extra)
    assert bytes(FrameDecoder(r.result.recv_key).feed(r.leftover)) == b"early data"


def test_peer_id_mismatch(identity: Identity) -> None:
    other = pid(identity("ed25519", 2))
    i, r = pair(identity, expected=other)
    m2 = step(r, i.data_to_send())
    with pytest.raises(PeerIdMismatch) as info:
        step(i, m2)
    assert info.value.expected == other
    assert info.value.actual == pid(identity("ed25519", 1))
    assert not i.done and i.error is info.value
    with pytest.raises(PeerIdMismatch) as again:  # dead: the same error again
        step(i, b"more")
    assert again.value is info.value


def test_tampered_message_2_fails(identity: Identity) -> None:
    i, r = pair(identity)
    m2 = bytearray(step(r, i.data_to_send()))
    m2[-5] ^= 0x40
    with pytest.raises(NoiseHandshakeError):
        step(i, bytes(m2))


def test_tampered_message_3_fails(identity: Identity) -> None:
    i, r = pair(identity)
    m3 = bytearray(step(i, step(r, i.data_to_send())))
    m3[40] ^= 1
    with pytest.raises(NoiseHandshakeError):
        step(r, bytes(m3))


def test_bad_signature_rejected(identity: Identity) -> None:
    i = NoiseHandshake(is_initiator=True, identity=identity("ed25519", 0))
    r = NoiseHandshake(
        is_initiator=False, identity=identity("ed25519", 1), identity_sig=b"\x01" * 64
    )
    with pytest.raises(InvalidSignature):
        step(i, step(r, i.data_to_send()))


def test_signature_for_another_static_key_rejected(identity: Identity) -> None:
    # A valid signature, but over a static key that is not the one in the handshake.
    donor = NoiseHandshake(is_initiator=False, identity=identity("ed25519", 1))
    i = NoiseHandshake(is_initiator=True, identity=identity("ed25519", 0))
    r = NoiseHandshake(is_initiator=False, identity=identity("ed25519", 1), identity_sig=donor._sig)
    with pytest.raises(InvalidSignature):
        step(i, step(r, i.data_to_send()))


class _FakeIdentity:
    """An identity whose public key has an unknown key type (7)."""

    class public_key:
        @staticmethod
        def to_protobuf() -> bytes:
            return b"\x08\x07\x12\x04abcd"


def test_unknown_key_type_rejected(identity: Identity) -> None:
    i = NoiseHandshake(is_initiator=True, identity=identity("ed25519", 0))
    r = NoiseHandshake(is_initiator=False, identity=_FakeIdentity(), identity_sig=b"sig")  # type: ignore[arg-type]
    with pytest.raises(InvalidHandshakePayload):
        step(i, step(r, i.data_to_send()))


@pytest.mark.parametrize(
    "garbage",
    [
        b"\x00\x00",  # empty message 1
        b"\x00\x05hello",  # short message 1
        b"\x00\x20" + b"\x00" * 32,  # low-order point (all zeros) as ephemeral key
    ],
)
def test_garbage_message_1(identity: Identity, garbage: bytes) -> None:
    r = NoiseHandshake(is_initiator=False, identity=identity("ed25519", 1))
    r.data_to_send()
    with pytest.raises(NoiseHandshakeError):
        step(r, garbage)


def test_garbage_message_2(identity: Identity) -> None:
    i = NoiseHandshake(is_initiator=True, identity=identity("ed25519", 0))
    i.data_to_send()
    with pytest.raises(HandshakeError):
        step(i, b"\x00\x60" + bytes(range(96)))


def test_responder_message_without_payload(identity: Identity) -> None:
    import noise.connection as nc

    i = NoiseHandshake(is_initiator=True, identity=identity("ed25519", 0))
    m1 = i.data_to_send()
    # A raw Noise responder that sends no libp2p payload at all.
    raw = nc.NoiseConnection.from_name(b"Noise_XX_25519_ChaChaPoly_SHA256")
    raw.set_as_responder()
    raw.set_keypair_from_private_bytes(nc.Keypair.STATIC, bytes(range(1, 33)))
    raw.start_handshake()
    raw.read_message(m1[2:])
    m2 = bytes(raw.write_message(b""))
    with pytest.raises(InvalidHandshakePayload):
        step(i, len(m2).to_bytes(2, "big") + m2)


# -- early muxer negotiation ----------------------------------------------------------


@pytest.mark.parametrize(
    ("imux", "rmux", "expected"),
    [
        ([YAMUX, MPLEX], [YAMUX, MPLEX], YAMUX),  # same lists
        ([YAMUX, MPLEX], [MPLEX, YAMUX], YAMUX),  # different order: initiator's wins
        ([MPLEX, YAMUX], [YAMUX, MPLEX], MPLEX),
        ([YAMUX], [MPLEX, YAMUX], YAMUX),
        ([MPLEX, YAMUX], [YAMUX], YAMUX),
        (None, [YAMUX], None),  # initiator sends no list
        ([YAMUX], None, None),  # responder sends no list
        (None, None, None),
        ([], [YAMUX], None),
    ],
)
def test_early_muxer_matrix(
    identity: Identity,
    imux: list[str] | None,
    rmux: list[str] | None,
    expected: str | None,
) -> None:
    i, r = run(*pair(identity, imux=imux, rmux=rmux))
    assert i.result.early_muxer == expected
    assert r.result.early_muxer == expected
    # The peer's list is exposed as received.
    assert i.result.remote_extensions is not None
    assert list(i.result.remote_extensions.stream_muxers) == list(rmux or [])


def test_early_muxer_no_overlap_fails_before_message_3(identity: Identity) -> None:
    i, r = pair(identity, imux=[YAMUX], rmux=[MPLEX])
    m2 = step(r, i.data_to_send())
    with pytest.raises(NoMuxerOverlap) as info:
        step(i, m2)
    assert info.value.ours == [YAMUX]
    assert info.value.theirs == [MPLEX]


def test_early_muxer_no_overlap_detected_by_responder(
    identity: Identity, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An initiator that skips the check still sends its list: the responder fails."""
    import p2pkit_noise.handshake as hs_mod

    i, r = pair(identity, imux=[YAMUX], rmux=[MPLEX])
    m2 = step(r, i.data_to_send())
    with monkeypatch.context() as m:
        m.setattr(hs_mod, "select_muxer", lambda a, b: None)
        m3 = step(i, m2)
    assert i.done
    with pytest.raises(NoMuxerOverlap):
        step(r, m3)
    assert not r.done


def test_select_muxer_rule() -> None:
    assert select_muxer([YAMUX, MPLEX], [MPLEX, YAMUX]) == YAMUX
    assert select_muxer([], [YAMUX]) is None
    assert select_muxer([YAMUX], []) is None
    with pytest.raises(NoMuxerOverlap):
        select_muxer(["/a"], ["/b"])


@settings(max_examples=200, deadline=None)
@given(chunks=st.lists(st.binary(max_size=120), max_size=6), initiator=st.booleans())
def test_random_bytes_only_raise_handshake_errors(
    identity: Identity, chunks: list[bytes], initiator: bool
) -> None:
    """Whatever a peer sends, the machine waits, answers, or raises a HandshakeError."""
    hs = NoiseHandshake(is_initiator=initiator, identity=identity("ed25519", 0))
    hs.data_to_send()
    try:
        for chunk in chunks:
            step(hs, chunk)
    except HandshakeError:
        pass
    assert not hs.done  # nothing random can carry a valid signed payload
