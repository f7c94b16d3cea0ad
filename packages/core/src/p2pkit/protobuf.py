"""Tiny protobuf wire-format helpers (proto2 subset: varints and length-delimited bytes).

libp2p's handshake and key messages (``PublicKey``, Noise payloads, identify) are a
handful of fields each, so a hand-written codec is smaller, faster and easier to audit
than generated code plus a protobuf runtime dependency.  Encoding is *deterministic*
(minimal varints, callers emit fields in tag order) because libp2p derives peer ids
from the encoded bytes.  Decoding treats every byte as hostile: any malformation is a
:class:`~p2pkit.errors.ProtocolError`, never an ``IndexError`` or ``ValueError``.
"""

from __future__ import annotations

from collections.abc import Iterator

from p2pkit.errors import ProtocolError
from p2pkit.varint import decode_uvarint, encode_uvarint

__all__ = [
    "WIRE_BYTES",
    "WIRE_FIXED32",
    "WIRE_FIXED64",
    "WIRE_VARINT",
    "decode_fields",
    "encode_bytes_field",
    "encode_varint_field",
    "iter_fields",
]

WIRE_VARINT = 0
WIRE_FIXED64 = 1
WIRE_BYTES = 2
WIRE_FIXED32 = 5

# Field numbers above 2**29 - 1 are invalid in protobuf.
_MAX_FIELD = (1 << 29) - 1


def _tag(field: int, wire_type: int) -> bytes:
    if not 1 <= field <= _MAX_FIELD:
        raise ValueError(f"protobuf field number out of range: {field}")
    return encode_uvarint((field << 3) | wire_type)


def encode_varint_field(field: int, value: int) -> bytes:
    """Encode ``field`` as wire type 0 with a minimal unsigned varint (value >= 0)."""
    return _tag(field, WIRE_VARINT) + encode_uvarint(value)


def encode_bytes_field(field: int, value: bytes | bytearray | memoryview) -> bytes:
    """Encode ``field`` as wire type 2 (length-delimited): tag, length, bytes."""
    return _tag(field, WIRE_BYTES) + encode_uvarint(len(value)) + bytes(value)


def _varint(data: bytes | bytearray | memoryview, pos: int, what: str) -> tuple[int, int]:
    decoded = decode_uvarint(data, pos)  # raises ProtocolError when over-long / non-minimal
    if decoded is None:
        raise ProtocolError(f"protobuf: truncated {what} at offset {pos}")
    return decoded


def iter_fields(data: bytes | bytearray | memoryview) -> Iterator[tuple[int, int, int | bytes]]:
    """Yield ``(field_number, wire_type, value)`` for each field of a message.

    Wire type 0 yields an ``int``, wire type 2 yields ``bytes``.  Fixed-width fields
    (wire types 1 and 5) are skipped because no libp2p message we parse uses them, but
    they are stepped over correctly so unknown fields of those types do not desync us.
    Groups (3, 4) and the undefined wire types 6, 7 raise ``ProtocolError``.
    """
    end = len(data)
    pos = 0
    while pos < end:
        key, pos = _varint(data, pos, "field tag")
        field, wire_type = key >> 3, key & 7
        if field == 0 or field > _MAX_FIELD:
            raise ProtocolError(f"protobuf: invalid field number {field}")
        if wire_type == WIRE_VARINT:
            value, pos = _varint(data, pos, f"varint of field {field}")
            yield field, wire_type, value
        elif wire_type == WIRE_BYTES:
            length, pos = _varint(data, pos, f"length of field {field}")
            if length > end - pos:
                raise ProtocolError(
                    f"protobuf: field {field} claims {length} bytes, only {end - pos} left"
                )
            yield field, wire_type, bytes(data[pos : pos + length])
            pos += length
        elif wire_type in (WIRE_FIXED64, WIRE_FIXED32):
            size = 8 if wire_type == WIRE_FIXED64 else 4
            if size > end - pos:
                raise ProtocolError(f"protobuf: truncated fixed-width field {field}")
            pos += size
        else:
            raise ProtocolError(f"protobuf: unsupported wire type {wire_type} (field {field})")


def decode_fields(data: bytes | bytearray | memoryview) -> dict[int, list[int | bytes]]:
    """Decode a whole message into ``{field_number: [values in order]}``.

    Repeated and duplicated fields keep every occurrence, so callers can decide
    whether a duplicate is an error (it is for libp2p keys) or last-one-wins.
    """
    fields: dict[int, list[int | bytes]] = {}
    for field, _wire_type, value in iter_fields(data):
        fields.setdefault(field, []).append(value)
    return fields
