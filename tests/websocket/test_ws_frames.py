"""The sans-IO frame codec: streaming payloads, any split of the input, every error."""

from __future__ import annotations

import os

import pytest

from p2pkit_websocket.frames import (
    OP_BINARY,
    OP_CLOSE,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    SMALL_DATA,
    CloseReceived,
    Data,
    Event,
    FrameReader,
    FrameWriter,
    Ping,
    WsProtocolError,
)


def feed(reader: FrameReader, wire: bytes, step: int) -> tuple[bytes, list[Event]]:
    """Feed ``wire`` in pieces of ``step`` bytes; payload bytes and the other events."""
    data = bytearray()
    other: list[Event] = []
    for i in range(0, len(wire), step):
        for ev in reader.receive_data(memoryview(wire[i : i + step])):
            if isinstance(ev, Data):
                data += ev.unmasked()
            else:
                other.append(ev)
    return bytes(data), other


def wire_of(writer: FrameWriter, *messages: bytes) -> bytes:
    return b"".join(bytes(p) for m in messages for p in writer.message([m]))


@pytest.mark.parametrize("masked", [True, False])
@pytest.mark.parametrize("step", [1, 3, 7, 4096, 1 << 20])
def test_any_split_gives_the_same_bytes(masked: bool, step: int) -> None:
    messages = [os.urandom(n) for n in (0, 1, 125, 126, 65535, 65536, 300_000)]
    wire = wire_of(FrameWriter(mask=masked, max_frame_size=1 << 20), *messages)
    reader = FrameReader(expect_masked=masked, max_message_size=1 << 20)
    data, other = feed(reader, wire, step)
    assert data == b"".join(messages) and other == []


def test_large_writes_are_split_into_messages_under_the_frame_size() -> None:
    payload = os.urandom(100_000)
    writer = FrameWriter(mask=False, max_frame_size=16_384)
    parts = writer.message([payload[:50_000], payload[50_000:]])
    wire = b"".join(bytes(p) for p in parts)
    reader = FrameReader(expect_masked=False, max_message_size=16_384)
    assert feed(reader, wire, 1000)[0] == payload


@pytest.mark.parametrize("masked", [True, False])
def test_write_many_parts_make_one_message(masked: bool) -> None:
    parts = [b"h" * 12, os.urandom(10_000), bytearray(b"t" * 5000)]
    out = FrameWriter(mask=masked, max_frame_size=1 << 20).message(parts)
    wire = b"".join(bytes(p) for p in out)
    reader = FrameReader(expect_masked=masked, max_message_size=1 << 20)
    events = reader.receive_data(memoryview(wire))
    assert len(events) == 1  # one frame
    assert bytes(events[0].unmasked()) == b"".join(bytes(p) for p in parts)  # type: ignore[union-attr]


def test_pieces_unmask_a_large_payload_in_order() -> None:
    from p2pkit_websocket.frames import MASK_PIECE

    payload = os.urandom(3 * MASK_PIECE + 7)
    wire = wire_of(FrameWriter(mask=True, max_frame_size=1 << 22), payload)
    reader = FrameReader(expect_masked=True, max_message_size=1 << 22)
    got = bytearray()
    for i in range(0, len(wire), 100_003):  # chunks that start at odd payload offsets
        for ev in reader.receive_data(memoryview(wire[i : i + 100_003])):
            assert isinstance(ev, Data)
            pieces = list(ev.pieces())
            assert all(len(p) <= MASK_PIECE for p in pieces)
            got += b"".join(bytes(p) for p in pieces)
    assert got == payload


def test_unmasked_payload_is_a_slice_of_the_input() -> None:
    wire = wire_of(FrameWriter(mask=False, max_frame_size=1 << 20), b"x" * 10_000)
    view = memoryview(wire)
    events = FrameReader(expect_masked=False, max_message_size=1 << 20).receive_data(view)
    assert isinstance(events[0], Data) and events[0].payload.obj is wire  # no copy


def test_fragmented_message_and_interleaved_ping() -> None:
    w = FrameWriter(mask=True, max_frame_size=1 << 20)
    first = bytearray(bytes(b"".join(bytes(p) for p in w.message([b"abc"]))))
    first[0] = 0x00 | OP_BINARY  # FIN clear: more fragments follow
    ping = w.control(OP_PING, b"hi")
    last = bytearray(bytes(b"".join(bytes(p) for p in w.message([b"def"]))))
    last[0] = 0x80  # FIN, continuation
    reader = FrameReader(expect_masked=True, max_message_size=1 << 20)
    data, other = feed(reader, bytes(first) + ping + bytes(last), 2)
    assert data == b"abcdef" and other == [Ping(b"hi")]


def test_close_frame_is_reported_and_data_after_it_is_an_error() -> None:
    w = FrameWriter(mask=False, max_frame_size=1 << 20)
    reader = FrameReader(expect_masked=False, max_message_size=1 << 20)
    assert reader.receive_data(memoryview(w.close(1000, "bye"))) == [CloseReceived(1000, "bye")]
    with pytest.raises(WsProtocolError) as err:
        reader.receive_data(memoryview(wire_of(w, b"late")))
    assert err.value.code == 1002


def _frame(b0: int, payload: bytes, masked: bool = True, length: int | None = None) -> bytes:
    n = len(payload) if length is None else length
    head = bytes([b0])
    mbit = 0x80 if masked else 0
    if n < 126:
        head += bytes([mbit | n])
    elif n < 65536:
        head += bytes([mbit | 126]) + n.to_bytes(2, "big")
    else:
        head += bytes([mbit | 127]) + n.to_bytes(8, "big")
    return head + (b"\0\0\0\0" if masked else b"") + payload


@pytest.mark.parametrize(
    ("wire", "code"),
    [
        (_frame(0x80 | OP_TEXT, b"hello"), 1003),  # text: binary messages only
        (_frame(0x80 | OP_BINARY, b"", length=1 << 30), 1009),  # too big, refused at the header
        (_frame(0x80 | OP_BINARY, b"x", masked=False), 1002),  # clients must mask
        (_frame(0xC0 | OP_BINARY, b"x"), 1002),  # RSV1 without an extension
        (_frame(0x80 | 0x3, b""), 1002),  # reserved opcode
        (_frame(0x80 | 0x0, b"x"), 1002),  # continuation with no message
        (_frame(0x00 | OP_PING, b""), 1002),  # fragmented control frame
        (_frame(0x80 | OP_PING, b"x" * 126), 1002),  # control payload over 125
        (_frame(0x80 | OP_CLOSE, b"\x03\xe8\xff"), 1007),  # reason not UTF-8
        # RFC 6455 7.4.1: a malformed Close is a protocol error, as gorilla and ws say
        (_frame(0x80 | OP_CLOSE, b"\x00\x01"), 1002),  # close code 1 is invalid
        (_frame(0x80 | OP_CLOSE, b"\x03\xed"), 1002),  # 1005 may not be sent
        (_frame(0x80 | OP_CLOSE, b"\x03"), 1002),  # one byte
    ],
)
def test_protocol_errors_carry_their_close_code(wire: bytes, code: int) -> None:
    reader = FrameReader(expect_masked=True, max_message_size=1 << 20)
    with pytest.raises(WsProtocolError) as err:
        reader.receive_data(memoryview(wire))
    assert err.value.code == code
    with pytest.raises(WsProtocolError):  # dead afterwards
        reader.receive_data(memoryview(b"\x82\x80\0\0\0\0"))


def test_fragments_count_towards_the_message_limit() -> None:
    reader = FrameReader(expect_masked=True, max_message_size=1000)
    reader.receive_data(memoryview(_frame(OP_BINARY, b"x" * 600)))  # FIN clear
    with pytest.raises(WsProtocolError) as err:
        reader.receive_data(memoryview(_frame(0x80, b"", length=600)))
    assert err.value.code == 1009


def test_small_frames_of_a_read_are_one_event_in_order() -> None:
    """1-byte frames used to be an event each (150,000 per 1 MiB read, ~40 MB of
    objects and a call through the receive path per byte); runs of payloads under
    SMALL_DATA are unmasked and joined, around the events between them."""
    w = FrameWriter(mask=True, max_frame_size=1 << 20)
    tiny = b"".join(wire_of(w, bytes([i])) for i in range(100))
    big = wire_of(w, b"B" * SMALL_DATA)
    ping = w.control(OP_PING, b"p")
    pong = w.control(OP_PONG, b"q")
    reader = FrameReader(expect_masked=True, max_message_size=1 << 20, pongs=False)
    events = reader.receive_data(memoryview(tiny + ping + tiny + pong + tiny + big + tiny))
    # the dropped pong does not split a run
    assert [type(e).__name__ for e in events] == ["Data", "Ping", "Data", "Data", "Data"]
    got = [bytes(e.unmasked()) for e in events if isinstance(e, Data)]
    assert got == [bytes(range(100)), bytes(range(100)) * 2, b"B" * SMALL_DATA, bytes(range(100))]
