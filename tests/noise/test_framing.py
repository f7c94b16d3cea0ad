"""The transport framer: vectors, chunking (hypothesis), garbage, limits."""

from __future__ import annotations

import itertools
import os
import struct
import sys

import pytest
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pkit.bufpool import thread_pool
from p2pkit.errors import ProtocolError
from p2pkit_noise import (
    MAX_PLAINTEXT,
    BadFrameLength,
    DecryptError,
    FrameDecoder,
    FrameEncoder,
    NonceExhausted,
    framing,
)
from p2pkit_noise.framing import MAX_NONCE

KEY = bytes(range(32))


def test_frame_vector() -> None:
    """One frame = BE length + ChaCha20-Poly1305(key, 0^4 || LE64(n), plaintext, ad=b"")."""
    enc = FrameEncoder(KEY)
    f0 = bytes(enc.encrypt(b"hello"))
    f1 = bytes(enc.encrypt(b"world"))
    aead = ChaCha20Poly1305(KEY)
    assert f0 == b"\x00\x15" + aead.encrypt(b"\x00" * 4 + struct.pack("<Q", 0), b"hello", b"")
    assert f1 == b"\x00\x15" + aead.encrypt(b"\x00" * 4 + struct.pack("<Q", 1), b"world", b"")
    # The nonce counter is little-endian in the last 8 bytes.
    enc = FrameEncoder(KEY, nonce=0x0102)
    nonce = bytes([0, 0, 0, 0, 2, 1, 0, 0, 0, 0, 0, 0])
    assert bytes(enc.encrypt(b"x")) == b"\x00\x11" + aead.encrypt(nonce, b"x", None)


def test_large_write_splits_into_full_frames() -> None:
    data = os.urandom(2 * MAX_PLAINTEXT + 10)
    out = bytes(FrameEncoder(KEY).encrypt(data))
    lengths = []
    pos = 0
    while pos < len(out):
        n = int.from_bytes(out[pos : pos + 2], "big")
        lengths.append(n)
        pos += 2 + n
    assert lengths == [65535, 65535, 26]
    assert bytes(FrameDecoder(KEY).feed(out)) == data


def test_empty_write_sends_nothing() -> None:
    enc = FrameEncoder(KEY)
    assert enc.encrypt(b"") == b""
    assert enc.nonce == 0


def test_encrypt_accepts_memoryview_and_bytearray() -> None:
    enc, dec = FrameEncoder(KEY), FrameDecoder(KEY)
    buf = bytearray(b"abcdef")
    out = enc.encrypt(memoryview(buf)[1:4]) + enc.encrypt(buf)
    assert bytes(dec.feed(out)) == b"bcdabcdef"


def test_each_encrypt_returns_a_fresh_buffer() -> None:
    enc = FrameEncoder(KEY)
    a = enc.encrypt(b"one")
    snapshot = bytes(a)
    b = enc.encrypt(b"two")
    assert a is not b and bytes(a) == snapshot


def _base(buf: object) -> object:
    return buf.obj if isinstance(buf, memoryview) else buf


def test_seal_frames_each_part_in_one_buffer() -> None:
    """seal(parts) = encrypt(part) for each part, concatenated (a frame never spans parts)."""
    parts = [b"header", os.urandom(MAX_PLAINTEXT + 5), b"", bytearray(b"tail")]
    sealed = bytes(FrameEncoder(KEY).seal(parts))
    ref = FrameEncoder(KEY)
    assert sealed == b"".join(bytes(ref.encrypt(p)) for p in parts)
    assert bytes(FrameDecoder(KEY).feed(sealed)) == b"".join(parts)
    assert bytes(FrameEncoder(KEY).seal([])) == b""


@pytest.mark.skipif(not hasattr(sys, "getrefcount"), reason="pool needs reference counts")
def test_seal_reuses_a_buffer_only_when_nobody_holds_it() -> None:
    """A large output comes from the pool; one still referenced (as a 3.12+ asyncio
    transport holds what it has not sent) is never overwritten."""
    framing._thread_pool().clear()  # other tests share this thread's pool
    enc, dec = FrameEncoder(KEY), FrameDecoder(KEY)
    data = [os.urandom(200_000) for _ in range(3)]
    held = enc.seal([data[0]])  # e.g. queued in a transport
    held_view = memoryview(held)[100:]  # the transport keeps a view of the unsent rest
    del held
    snapshot = bytes(held_view)
    second = enc.seal([data[1]])
    assert _base(second) is not held_view.obj
    second_id = id(_base(second))
    first_frames = bytes(memoryview(held_view.obj)[:100]) + snapshot
    assert bytes(dec.feed(first_frames)) == data[0]
    assert bytes(dec.feed(second)) == data[1]
    del second  # written and dropped: its memory is reused
    third = enc.seal([data[2]])
    assert id(_base(third)) == second_id
    assert bytes(held_view) == snapshot  # untouched all along
    assert bytes(dec.feed(third)) == data[2]


def test_small_and_huge_seals_are_fresh_buffers() -> None:
    enc = FrameEncoder(KEY)
    a = enc.seal([b"one"])
    snapshot = bytes(a)
    enc.seal([b"two"])
    assert bytes(a) == snapshot
    pool = framing._thread_pool()
    kept = list(pool)
    huge = enc.seal([bytes(framing.POOL_MAX)])
    assert all(_base(huge) is not buf for buf in pool)
    assert pool == kept


_chunks = st.lists(st.binary(min_size=0, max_size=3000), min_size=1, max_size=20)


@settings(max_examples=150, deadline=None)
@given(messages=_chunks, cuts=st.lists(st.integers(min_value=0, max_value=70000), max_size=30))
def test_any_chunking_decodes_to_the_same_plaintext(messages: list[bytes], cuts: list[int]) -> None:
    enc, dec = FrameEncoder(KEY), FrameDecoder(KEY)
    stream = b"".join(bytes(enc.encrypt(m)) for m in messages)
    points = sorted({min(c, len(stream)) for c in cuts} | {0, len(stream)})
    got = bytearray()
    for a, b in itertools.pairwise(points):
        got += dec.feed(memoryview(stream)[a:b])
    assert bytes(got) == b"".join(messages)
    assert dec.pending == 0
    dec.feed_eof()


@settings(max_examples=10, deadline=None)
@given(cut=st.integers(min_value=1, max_value=2 * 65537))
def test_chunking_across_full_frames(cut: int) -> None:
    data = os.urandom(2 * MAX_PLAINTEXT + 100)
    stream = bytes(FrameEncoder(KEY).encrypt(data))
    dec = FrameDecoder(KEY)
    got = bytearray()
    for pos in range(0, len(stream), cut):
        got += dec.feed(stream[pos : pos + cut])
    assert got == data


@settings(max_examples=300, deadline=None)
@given(garbage=st.lists(st.binary(min_size=0, max_size=200), max_size=10))
def test_garbage_only_raises_typed_errors(garbage: list[bytes]) -> None:
    dec = FrameDecoder(KEY)
    try:
        for chunk in garbage:
            assert bytes(dec.feed(chunk)) == b""  # nothing random can authenticate
        dec.feed_eof()
    except ProtocolError as exc:
        assert isinstance(exc, DecryptError | BadFrameLength)
        # The decoder stays dead with the same error.
        with pytest.raises(type(exc)):
            dec.feed(b"\x00")


@settings(max_examples=100, deadline=None)
@given(pos=st.integers(min_value=0), bit=st.integers(min_value=0, max_value=7))
def test_any_flipped_bit_is_detected(pos: int, bit: int) -> None:
    stream = bytearray(FrameEncoder(KEY).encrypt(b"some plaintext" * 10))
    pos %= len(stream)
    stream[pos] ^= 1 << bit
    dec = FrameDecoder(KEY)
    with pytest.raises((DecryptError, BadFrameLength)):
        dec.feed(stream)
        dec.feed_eof()


def test_short_frame_rejected() -> None:
    with pytest.raises(BadFrameLength):
        FrameDecoder(KEY).feed(b"\x00\x0f" + bytes(15))
    with pytest.raises(BadFrameLength):
        FrameDecoder(KEY).feed(b"\x00\x00")
    dec = FrameDecoder(KEY)
    dec.feed(b"\x00")  # a split header
    with pytest.raises(BadFrameLength):
        dec.feed(b"\x03abc")


def test_truncated_stream_detected_at_eof() -> None:
    frame = bytes(FrameEncoder(KEY).encrypt(b"abc"))
    dec = FrameDecoder(KEY)
    assert bytes(dec.feed(frame[:-1])) == b""
    assert dec.pending == len(frame) - 1
    with pytest.raises(BadFrameLength):
        dec.feed_eof()


def test_replayed_or_reordered_frames_fail() -> None:
    enc = FrameEncoder(KEY)
    f0, f1 = bytes(enc.encrypt(b"a")), bytes(enc.encrypt(b"b"))
    with pytest.raises(DecryptError):
        FrameDecoder(KEY).feed(f1 + f0)
    dec = FrameDecoder(KEY)
    dec.feed(f0)
    with pytest.raises(DecryptError):
        dec.feed(f0)


def test_wrong_key_fails() -> None:
    frame = FrameEncoder(KEY).encrypt(b"secret")
    with pytest.raises(DecryptError):
        FrameDecoder(bytes(32)).feed(frame)


def test_nonce_exhaustion_guarded() -> None:
    enc = FrameEncoder(KEY, nonce=MAX_NONCE - 1)
    last = enc.encrypt(b"last one")  # n = 2**64 - 2 is the last usable nonce
    with pytest.raises(NonceExhausted):
        enc.encrypt(b"one too many")
    dec = FrameDecoder(KEY, nonce=MAX_NONCE - 1)
    assert bytes(dec.feed(last)) == b"last one"
    with pytest.raises(NonceExhausted):
        dec.feed(last)


def test_many_frames_per_feed_and_buffer_reuse() -> None:
    enc, dec = FrameEncoder(KEY), FrameDecoder(KEY)
    stream = b"".join(bytes(enc.encrypt(bytes([i]) * 100)) for i in range(50))
    view = dec.feed(stream)
    assert bytes(view) == b"".join(bytes([i]) * 100 for i in range(50))


def test_decoder_holds_buffers_only_while_in_use() -> None:
    """An idle connection's decoder holds no buffer: the output goes back to the pool on
    release(), a split frame's buffer once the frame is complete."""
    enc, dec = FrameEncoder(KEY), FrameDecoder(KEY)
    assert dec.held == 0
    big = bytes(enc.encrypt(os.urandom(MAX_PLAINTEXT)))
    assert len(dec.feed(big[:1000])) == 0
    assert dec.pending == 1000
    dec.release()
    assert dec.held == len(big)  # only the split frame's buffer (full-frame size)
    assert len(dec.feed(big[1000:])) == MAX_PLAINTEXT
    dec.release()
    assert dec.held == 0 and dec.pending == 0
    # Bytes from the same pool again: no allocation per read for a busy connection.
    pool = thread_pool()
    counts = []
    for _ in range(3):
        frame = bytes(enc.encrypt(b"x" * 5000))
        assert bytes(dec.feed(frame)) == b"x" * 5000
        dec.release()
        counts.append((pool.held_count, pool.held_bytes))
    assert dec.held == 0 and counts[0] == counts[1] == counts[2]


def test_good_frames_before_a_bad_one_are_returned() -> None:
    enc = FrameEncoder(KEY)
    good = bytes(enc.encrypt(b"good")) + bytes(enc.encrypt(b"also good"))
    dec = FrameDecoder(KEY)
    assert bytes(dec.feed(good + b"\x00\x10" + bytes(16))) == b"goodalso good"
    assert isinstance(dec.error, DecryptError)
    with pytest.raises(DecryptError):
        dec.feed(b"")
    with pytest.raises(DecryptError):
        dec.feed_eof()


def test_fallback_without_encrypt_into(monkeypatch: pytest.MonkeyPatch) -> None:
    """Older ``cryptography`` (no encrypt_into/decrypt_into): same bytes on the wire."""
    import p2pkit_noise.framing as framing

    data = os.urandom(MAX_PLAINTEXT + 1000)
    fast = bytes(FrameEncoder(KEY).encrypt(data))
    monkeypatch.setattr(framing, "HAS_INTO", False)
    slow = bytes(FrameEncoder(KEY).encrypt(data))
    assert slow == fast
    dec = FrameDecoder(KEY)
    assert bytes(dec.feed(slow[:1000])) + bytes(dec.feed(slow[1000:])) == data
    with pytest.raises(DecryptError):
        FrameDecoder(bytes(32)).feed(slow)
