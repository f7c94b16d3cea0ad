"""Sans-IO mplex session: byte vectors, stream namespaces, limits, protocol errors."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pkit.errors import (
    ConnectionClosed,
    MessageTooLarge,
    MuxerError,
    ProtocolError,
    ResourceLimitExceeded,
    StreamClosed,
)
from p2pkit_mplex import (
    DataReceived,
    Flag,
    MplexControlFlood,
    MplexFrameTooLarge,
    MplexOptions,
    MplexProtocolError,
    MplexSession,
    StreamEnded,
    StreamKey,
    StreamOpened,
    StreamReset,
    encode_frame,
)
from p2pkit_mplex.session import JOIN_LIMIT, MAX_QUEUED_REPLIES

MiB = 1 << 20


def pair(
    options: MplexOptions | None = None,
) -> tuple[MplexSession, MplexSession]:
    return (
        MplexSession(is_initiator=True, options=options),
        MplexSession(is_initiator=False, options=options),
    )


# -- byte vectors: one per flag, as we send them ------------------------------------------


def test_new_stream_bytes() -> None:
    a = MplexSession(is_initiator=True)
    key, frame = a.open_stream()
    assert key == StreamKey(0, True)
    assert frame == b"\x00\x01" + b"0"  # header 0<<3|0, length 1, name "0"
    key2, frame2 = a.open_stream()
    assert key2 == StreamKey(1, True)
    assert frame2 == b"\x08\x01" + b"1"
    _, frame3 = a.open_stream("chat")
    assert frame3 == b"\x10\x04chat"


def test_initiator_flags_bytes() -> None:
    a = MplexSession(is_initiator=True)
    for _ in range(17):
        key, _ = a.open_stream()
    assert key.id == 16  # 16<<3 = 128: two-byte header varint
    assert a.send_data(key, b"hi") == b"\x82\x01\x02hi"  # 128|2 = MessageInitiator
    assert a.close_stream(key) == b"\x84\x01\x00"  # 128|4 = CloseInitiator
    assert a.close_stream(key) == b""  # idempotent
    k0 = StreamKey(0, True)
    assert a.reset_stream(k0) == b"\x06\x00"  # ResetInitiator
    assert a.reset_stream(k0) == b""


def test_receiver_flags_bytes() -> None:
    b = MplexSession(is_initiator=False)
    events = b.receive_data(b"\x28\x03abc")  # NewStream id 5, name "abc"
    key = StreamKey(5, False)
    assert events == [StreamOpened(key, "abc")]
    assert b.send_data(key, b"x") == b"\x29\x01x"  # 5<<3|1 MessageReceiver
    assert b.close_stream(key) == b"\x2b\x00"  # CloseReceiver
    assert b.reset_stream(key) == b"\x2d\x00"  # ResetReceiver


def test_receive_every_flag() -> None:
    b = MplexSession(is_initiator=False)
    ours, _ = b.open_stream()  # (0, True)
    theirs = StreamKey(0, False)
    assert b.receive_data(encode_frame(0, Flag.NEW_STREAM, b"0")) == [StreamOpened(theirs, "0")]
    # Message/Close/Reset "Receiver" flags name the stream WE opened.
    assert b.receive_data(encode_frame(0, Flag.MESSAGE_RECEIVER, b"to-ours")) == [
        DataReceived(ours, b"to-ours")
    ]
    assert b.receive_data(encode_frame(0, Flag.MESSAGE_INITIATOR, b"to-theirs")) == [
        DataReceived(theirs, b"to-theirs")
    ]
    assert b.receive_data(encode_frame(0, Flag.CLOSE_INITIATOR)) == [StreamEnded(theirs)]
    assert b.receive_data(encode_frame(0, Flag.CLOSE_RECEIVER)) == [StreamEnded(ours)]
    assert b.receive_data(encode_frame(0, Flag.RESET_RECEIVER)) == [
        StreamReset(ours, by_remote=True, reason="reset by the remote")
    ]
    assert b.receive_data(encode_frame(0, Flag.RESET_INITIATOR)) == [
        StreamReset(theirs, by_remote=True, reason="reset by the remote")
    ]
    assert b.stream_keys() == []


def test_flag_7_is_protocol_error() -> None:
    b = MplexSession(is_initiator=False)
    with pytest.raises(MplexProtocolError):
        b.receive_data(b"\x07\x00")
    assert b.closed
    with pytest.raises(MplexProtocolError):  # the session stays dead
        b.receive_data(b"")
    with pytest.raises(ConnectionClosed):
        b.open_stream()


# -- namespaces ---------------------------------------------------------------------------


def test_both_sides_open_id_0_at_once() -> None:
    a, b = pair()
    ka, new_a = a.open_stream()
    kb, new_b = b.open_stream()
    assert ka.id == kb.id == 0
    # Frames cross on the wire.
    assert b.receive_data(new_a) == [StreamOpened(StreamKey(0, False), "0")]
    assert a.receive_data(new_b) == [StreamOpened(StreamKey(0, False), "0")]
    # Each writes on its own stream and on the peer's stream.
    wire_a = a.send_data(ka, b"a-own") + a.send_data(StreamKey(0, False), b"a-reply")
    wire_b = b.send_data(kb, b"b-own") + b.send_data(StreamKey(0, False), b"b-reply")
    assert b.receive_data(wire_a) == [
        DataReceived(StreamKey(0, False), b"a-own"),
        DataReceived(StreamKey(0, True), b"a-reply"),
    ]
    assert a.receive_data(wire_b) == [
        DataReceived(StreamKey(0, False), b"b-own"),
        DataReceived(StreamKey(0, True), b"b-reply"),
    ]
    # Closing one does not touch the other.
    assert b.receive_data(a.close_stream(ka)) == [StreamEnded(StreamKey(0, False))]
    assert b.has_stream(StreamKey(0, True))
    assert b.receive_data(a.reset_stream(StreamKey(0, False))) == [
        StreamReset(StreamKey(0, True), by_remote=True, reason="reset by the remote")
    ]
    assert b.stream_keys() == [StreamKey(0, False)]


# -- framing ------------------------------------------------------------------------------


def test_byte_by_byte_and_streamed_bodies() -> None:
    a, b = pair()
    key, frame = a.open_stream()
    payload = bytes(range(256)) * 10
    wire = frame + a.send_data(key, payload) + a.close_stream(key)
    events = []
    for i in range(len(wire)):
        events += b.receive_data(wire[i : i + 1])
    assert events[0] == StreamOpened(StreamKey(0, False), "0")
    data = b"".join(e.data for e in events if isinstance(e, DataReceived))
    assert data == payload
    assert events[-1] == StreamEnded(StreamKey(0, False))


def test_large_write_split_at_max_message_size() -> None:
    a, b = pair()
    key, frame = a.open_stream()
    b.receive_data(frame)
    payload = bytes(2 * MiB + 5)
    parts = a.send_data_parts(key, payload)
    # header, 1 MiB, header, 1 MiB, header, 5 bytes
    assert [len(p) for p in parts[1::2]] == [MiB, MiB, 5]
    assert parts[0] == b"\x02\x80\x80\x40"  # MessageInitiator, length 1 MiB
    events = b.receive_data(b"".join(parts))
    assert sum(len(e.data) for e in events if isinstance(e, DataReceived)) == len(payload)


def test_frame_too_large_is_fatal() -> None:
    b = MplexSession(is_initiator=False)
    b.receive_data(encode_frame(0, Flag.NEW_STREAM))
    header = b"\x02\x81\x80\x40"  # length 1 MiB + 1
    with pytest.raises(MplexFrameTooLarge) as info:
        b.receive_data(header)
    assert isinstance(info.value, MessageTooLarge)
    assert isinstance(info.value, MuxerError)


def test_overlong_varint_is_fatal() -> None:
    b = MplexSession(is_initiator=False)
    with pytest.raises(MplexProtocolError):
        b.receive_data(b"\x80" * 10)
    b = MplexSession(is_initiator=False)
    with pytest.raises(MplexProtocolError):  # non-minimal length varint
        b.receive_data(b"\x02\x80\x00")


def test_duplicate_new_stream_is_fatal() -> None:
    b = MplexSession(is_initiator=False)
    b.receive_data(encode_frame(3, Flag.NEW_STREAM))
    with pytest.raises(MplexProtocolError):
        b.receive_data(encode_frame(3, Flag.NEW_STREAM))


def test_reuse_of_a_finished_id_is_accepted() -> None:
    b = MplexSession(is_initiator=False)
    b.receive_data(encode_frame(3, Flag.NEW_STREAM) + encode_frame(3, Flag.RESET_INITIATOR))
    assert b.receive_data(encode_frame(3, Flag.NEW_STREAM, b"again")) == [
        StreamOpened(StreamKey(3, False), "again")
    ]


# -- stream states ------------------------------------------------------------------------


def test_half_close_both_ways_removes_stream() -> None:
    a, b = pair()
    key, frame = a.open_stream()
    b.receive_data(frame)
    rkey = StreamKey(0, False)
    assert b.receive_data(a.close_stream(key)) == [StreamEnded(rkey)]
    # b can still write after a's half-close; a can still read.
    assert a.receive_data(b.send_data(rkey, b"late")) == [DataReceived(key, b"late")]
    with pytest.raises(StreamClosed):
        a.send_data(key, b"x")
    assert a.receive_data(b.close_stream(rkey)) == [StreamEnded(key)]
    assert a.stream_keys() == [] and b.stream_keys() == []


def test_data_after_remote_close_is_dropped() -> None:
    b = MplexSession(is_initiator=False)
    b.receive_data(encode_frame(0, Flag.NEW_STREAM) + encode_frame(0, Flag.CLOSE_INITIATOR))
    assert b.receive_data(encode_frame(0, Flag.MESSAGE_INITIATOR, b"zombie")) == []
    assert b.receive_data(encode_frame(0, Flag.CLOSE_INITIATOR)) == []  # duplicate Close


def test_unknown_stream_frames_are_dropped_but_bounded() -> None:
    b = MplexSession(is_initiator=False, options=MplexOptions(max_unknown_frames=3))
    # Stragglers for streams that existed do not count.
    key, _ = b.open_stream()
    b.reset_stream(key)
    b.receive_data(encode_frame(9, Flag.NEW_STREAM) + encode_frame(9, Flag.RESET_INITIATOR))
    for _ in range(10):
        assert b.receive_data(encode_frame(0, Flag.MESSAGE_RECEIVER, b"late")) == []
        assert b.receive_data(encode_frame(9, Flag.MESSAGE_INITIATOR, b"late")) == []
    # Streams that never existed do.
    for sid in (10, 11, 12):
        assert b.receive_data(encode_frame(sid, Flag.MESSAGE_INITIATOR, b"?")) == []
    with pytest.raises(MplexProtocolError):
        b.receive_data(encode_frame(1, Flag.CLOSE_RECEIVER))  # we never opened id 1


def test_slow_reader_is_reset_at_the_bound_without_timeout() -> None:
    opts = MplexOptions(max_stream_buffer=4096, max_message_size=1024, slow_reader_timeout=0)
    a, b = pair(opts)
    key, frame = a.open_stream()
    rkey = StreamKey(0, False)
    b.receive_data(frame)
    wire = b"".join(a.send_data(key, bytes(1024)) for _ in range(4))
    assert len(b.receive_data(wire)) == 4
    assert b.buffered(rkey) == 4096
    b.consumed(rkey, 1000)  # the reader takes a little
    events = b.receive_data(a.send_data(key, bytes(1000)))
    assert events == [DataReceived(rkey, bytes(1000))]
    events = b.receive_data(a.send_data(key, b"x"))  # one byte over the bound
    assert len(events) == 1 and isinstance(events[0], StreamReset)
    assert events[0].by_remote is False
    assert not b.has_stream(rkey)
    reset = b.data_to_send()
    assert reset == b"\x05\x00"  # ResetReceiver for id 0
    assert b.data_to_send() == b""
    # The writer learns of it; its in-flight data is dropped without counting.
    assert a.receive_data(reset) == [StreamReset(key, by_remote=True, reason="reset by the remote")]
    with pytest.raises(StreamClosed):
        a.send_data(key, b"more")
    assert b.receive_data(encode_frame(0, Flag.MESSAGE_INITIATOR, bytes(1000))) == []


def test_congestion_then_hard_limit_and_reset_congested() -> None:
    """With a timeout, over the bound the session reports congestion (the shell pauses
    reading); at twice the bound it resets at once; reset_congested resets laggards."""
    opts = MplexOptions(max_stream_buffer=4096, max_message_size=1024, slow_reader_timeout=1)
    a, b = pair(opts)
    k1, f1 = a.open_stream()
    k2, f2 = a.open_stream()
    r1, r2 = StreamKey(0, False), StreamKey(1, False)
    b.receive_data(f1 + f2)
    b.receive_data(a.send_data(k1, bytes(4096)))
    assert not b.congested
    assert b.receive_data(a.send_data(k1, b"y")) == [DataReceived(r1, b"y")]
    assert b.congested
    b.consumed(r1, 1)
    assert not b.congested  # back at the bound
    b.receive_data(a.send_data(k1, bytes(4096)))  # 8192 buffered: at the hard limit
    assert b.congested and b.buffered(r1) == 8192
    events = b.receive_data(a.send_data(k1, b"z"))  # 8193 > 2 * 4096
    assert len(events) == 1 and isinstance(events[0], StreamReset)
    assert not b.congested and b.data_to_send() == encode_frame(0, Flag.RESET_RECEIVER)
    # reset_congested: only the streams over the bound.
    b.receive_data(a.send_data(k2, bytes(5000)))
    k3, f3 = a.open_stream()
    b.receive_data(f3 + a.send_data(k3, bytes(10)))
    assert b.congested
    events = b.reset_congested()
    assert [e.key for e in events if isinstance(e, StreamReset)] == [r2]
    assert b.data_to_send() == encode_frame(1, Flag.RESET_RECEIVER)
    assert not b.congested and b.has_stream(StreamKey(2, False))


def test_max_streams() -> None:
    opts = MplexOptions(max_streams=2)
    a, b = pair(opts)
    a.open_stream()
    a.open_stream()
    with pytest.raises(ResourceLimitExceeded):
        a.open_stream()
    # Inbound: a third NewStream is answered with ResetReceiver, no event.
    wire = b"".join(encode_frame(i, Flag.NEW_STREAM) for i in range(3))
    events = b.receive_data(wire)
    assert [type(e) for e in events] == [StreamOpened, StreamOpened]
    assert b.data_to_send() == encode_frame(2, Flag.RESET_RECEIVER)
    # Once one finishes, another is accepted.
    b.receive_data(encode_frame(0, Flag.RESET_INITIATOR))
    assert len(b.receive_data(encode_frame(3, Flag.NEW_STREAM))) == 1


def test_close_session() -> None:
    a = MplexSession(is_initiator=True)
    a.open_stream()
    a.open_stream()
    expected = encode_frame(0, Flag.CLOSE_INITIATOR) + encode_frame(1, Flag.CLOSE_INITIATOR)
    assert a.close() == expected
    with pytest.raises(ConnectionClosed):
        a.open_stream()


# -- fuzzing ------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=64), max_size=20))
def test_random_bytes_only_raise_typed_errors(chunks: list[bytes]) -> None:
    s = MplexSession(is_initiator=False, options=MplexOptions(max_stream_buffer=MiB))
    s.open_stream()
    try:
        for chunk in chunks:
            s.receive_data(chunk)
            s.data_to_send()
    except ProtocolError:
        assert s.closed


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=4000), st.lists(st.integers(1, 50), min_size=1, max_size=30))
def test_any_split_gives_same_data(payload: bytes, cuts: list[int]) -> None:
    a = MplexSession(is_initiator=True)
    key, frame = a.open_stream()
    wire = frame + a.send_data(key, payload) + a.close_stream(key)
    b = MplexSession(is_initiator=False)
    events = []
    pos = 0
    i = 0
    while pos < len(wire):
        step = cuts[i % len(cuts)]
        events += b.receive_data(wire[pos : pos + step])
        pos += step
        i += 1
    assert b"".join(e.data for e in events if isinstance(e, DataReceived)) == payload
    assert events[-1] == StreamEnded(StreamKey(0, False))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_streams": 0},
        {"max_stream_buffer": -1},
        {"max_message_size": True},
        {"max_stream_buffer": 1000, "max_message_size": 2000},
        {"slow_reader_timeout": -1},
        {"slow_reader_timeout": "5"},
    ],
)
def test_invalid_options(kwargs: dict[str, object]) -> None:
    from p2pkit.errors import ConfigError

    with pytest.raises(ConfigError):
        MplexOptions(**kwargs)  # type: ignore[arg-type]


def test_hard_limit() -> None:
    assert MplexOptions().hard_stream_buffer == 8 * MiB
    assert MplexOptions(slow_reader_timeout=0).hard_stream_buffer == 4 * MiB


@pytest.mark.parametrize("sid", [15, 16, 2047, 2048, 1 << 40])
def test_header_sizes_and_fast_path(sid: int) -> None:
    """1-, 2- and longer header varints, short and long bodies, whole and byte by byte."""
    for body in (b"x", bytes(127), bytes(128), bytes(300)):
        wire = encode_frame(sid, Flag.NEW_STREAM) + encode_frame(sid, Flag.MESSAGE_INITIATOR, body)
        key = StreamKey(sid, False)
        whole = MplexSession(is_initiator=False).receive_data(wire)
        assert whole == [StreamOpened(key, ""), DataReceived(key, body)]
        s = MplexSession(is_initiator=False)
        events = [e for i in range(len(wire)) for e in s.receive_data(wire[i : i + 1])]
        assert b"".join(e.data for e in events if isinstance(e, DataReceived)) == body


def test_non_minimal_two_byte_header_is_rejected() -> None:
    s = MplexSession(is_initiator=False)
    with pytest.raises(MplexProtocolError):
        s.receive_data(b"\x80\x00\x00\x00")  # id 0 NewStream, header padded to 2 bytes


def test_refusals_per_batch_are_bounded() -> None:
    s = MplexSession(is_initiator=False, options=MplexOptions(max_streams=1))
    batch = b"".join(encode_frame(i, Flag.NEW_STREAM) for i in range(MAX_QUEUED_REPLIES + 1))
    assert len(s.receive_data(batch)) == 1  # one accepted, the rest refused
    assert s.data_to_send().count(b"\x00") == MAX_QUEUED_REPLIES  # one Reset each
    assert s.replies_queued == MAX_QUEUED_REPLIES
    flood = b"".join(
        encode_frame(i, Flag.NEW_STREAM) for i in range(2000, 2002 + MAX_QUEUED_REPLIES)
    )
    with pytest.raises(MplexControlFlood):
        s.receive_data(flood)


def test_send_data_parts_split_at_join_limit() -> None:
    """The shell sends writes up to JOIN_LIMIT with send_data and larger ones as the
    (header, payload) pairs of send_data_parts: the two must agree on the limit."""
    a, _ = pair()
    key, _ = a.open_stream()
    assert len(a.send_data_parts(key, bytes(JOIN_LIMIT))) == 1
    parts = a.send_data_parts(key, bytes(JOIN_LIMIT + 1))
    assert len(parts) == 2 and len(parts[1]) == JOIN_LIMIT + 1
