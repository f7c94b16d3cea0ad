"""p2pkit.protobuf: deterministic encoding and hostile-input-safe decoding."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pkit.errors import ProtocolError
from p2pkit.protobuf import decode_fields, encode_bytes_field, encode_varint_field, iter_fields


def test_encode_known_bytes() -> None:
    # Canonical examples from the protobuf encoding guide / libp2p PublicKey messages.
    assert encode_varint_field(1, 150) == bytes.fromhex("089601")
    assert encode_varint_field(1, 1) == b"\x08\x01"
    assert encode_varint_field(1, 0) == b"\x08\x00"
    assert encode_bytes_field(2, b"testing") == bytes.fromhex("120774657374696e67")
    assert encode_bytes_field(2, b"") == b"\x12\x00"
    # Field numbers >= 16 need a two-byte tag.
    assert encode_varint_field(16, 1) == b"\x80\x01\x01"
    assert encode_bytes_field(2, bytearray(b"ab")) == b"\x12\x02ab"


def test_encode_rejects_bad_field_numbers_and_values() -> None:
    with pytest.raises(ValueError):
        encode_varint_field(0, 1)
    with pytest.raises(ValueError):
        encode_bytes_field(1 << 29, b"")
    with pytest.raises(ValueError):
        encode_varint_field(1, -1)


def test_iter_fields_in_order_and_skips_fixed_width() -> None:
    msg = (
        encode_varint_field(1, 3)
        + bytes([(7 << 3) | 1]) + b"\x01" * 8  # fixed64, skipped
        + encode_bytes_field(2, b"data")
        + bytes([(9 << 3) | 5]) + b"\x02" * 4  # fixed32, skipped
        + encode_bytes_field(2, b"more")
    )  # fmt: skip
    assert list(iter_fields(msg)) == [(1, 0, 3), (2, 2, b"data"), (2, 2, b"more")]
    assert decode_fields(msg) == {1: [3], 2: [b"data", b"more"]}
    assert list(iter_fields(memoryview(msg))) == list(iter_fields(msg))
    assert decode_fields(b"") == {}


@pytest.mark.parametrize(
    "data",
    [
        b"\x08",  # varint value missing
        b"\x08\x80",  # varint truncated
        b"\x12\x05abc",  # length beyond end
        b"\x12",  # length missing
        b"\x80",  # tag truncated
        b"\x0b",  # wire type 3 (start group)
        b"\x0c",  # wire type 4 (end group)
        b"\x0e",  # wire type 6
        b"\x0f",  # wire type 7
        b"\x00\x01",  # field number 0
        b"\x09\x01\x02",  # fixed64 truncated
        b"\x0d\x01",  # fixed32 truncated
        b"\x08" + b"\xff" * 9 + b"\x01",  # over-long varint
        b"\x08\x80\x00",  # non-minimal varint (libp2p requires minimal encoding)
    ],
)
def test_malformed_input_raises_protocol_error(data: bytes) -> None:
    with pytest.raises(ProtocolError):
        list(iter_fields(data))
    with pytest.raises(ProtocolError):
        decode_fields(data)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64))
def test_random_bytes_only_raise_protocol_error(data: bytes) -> None:
    try:
        fields = list(iter_fields(data))
    except ProtocolError:
        return
    for field, wire_type, value in fields:
        assert field >= 1
        assert (wire_type, type(value)) in ((0, int), (2, bytes))


_field = st.integers(min_value=1, max_value=(1 << 29) - 1)
_item = st.one_of(
    st.tuples(st.just(0), _field, st.integers(min_value=0, max_value=(1 << 63) - 1)),
    st.tuples(st.just(2), _field, st.binary(max_size=300)),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(_item, max_size=8))
def test_encode_iter_round_trip(items: list[tuple[int, int, int | bytes]]) -> None:
    msg = b""
    for wire_type, field, value in items:
        if wire_type == 0:
            assert isinstance(value, int)
            msg += encode_varint_field(field, value)
        else:
            assert isinstance(value, bytes)
            msg += encode_bytes_field(field, value)
    assert list(iter_fields(msg)) == [(f, w, v) for w, f, v in items]
