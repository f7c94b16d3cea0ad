"""Unsigned varints (multiformats unsigned-varint, protobuf base-128).

Limits follow the multiformats spec: at most 9 bytes (63 bits), minimal encoding.
"""

from __future__ import annotations

from p2pkit.errors import ProtocolError

MAX_VARINT_BYTES = 9


def encode_uvarint(value: int) -> bytes:
    if value < 0:
        raise ValueError("uvarint must be >= 0")
    if value < 0x80:
        return bytes((value,))
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def decode_uvarint(buf: bytes | bytearray | memoryview, pos: int = 0) -> tuple[int, int] | None:
    """Decode one uvarint at ``pos``: ``(value, next_pos)``, or None if ``buf`` ends first.

    Raises ProtocolError when longer than 9 bytes or not minimally encoded.
    """
    result = 0
    shift = 0
    n = len(buf)
    i = pos
    while i < n:
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            if b == 0 and i - pos > 1:
                raise ProtocolError("varint is not minimally encoded")
            return result, i
        shift += 7
        if i - pos >= MAX_VARINT_BYTES:
            raise ProtocolError("varint longer than 9 bytes")
    return None
