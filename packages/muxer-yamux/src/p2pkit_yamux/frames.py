"""Yamux wire format: the 12-byte header and the frames we send.

Header (big endian): version u8 (0), type u8, flags u16, stream id u32, length u32.
``length`` is the payload size (Data), a window delta (WindowUpdate), an opaque value
echoed back (Ping) or an error code (GoAway).  Flags may ride on Data *and*
WindowUpdate frames; we always send SYN/ACK/FIN/RST on WindowUpdate frames (like
go-yamux) because js-libp2p drops the payload of a Data frame carrying FIN.
"""

from __future__ import annotations

import struct
from typing import Final

VERSION: Final = 0
HEADER_SIZE: Final = 12

TYPE_DATA: Final = 0
TYPE_WINDOW_UPDATE: Final = 1
TYPE_PING: Final = 2
TYPE_GO_AWAY: Final = 3

FLAG_SYN: Final = 0x1
FLAG_ACK: Final = 0x2
FLAG_FIN: Final = 0x4
FLAG_RST: Final = 0x8

GO_AWAY_NORMAL: Final = 0
GO_AWAY_PROTOCOL_ERROR: Final = 1
GO_AWAY_INTERNAL_ERROR: Final = 2

MAX_U32: Final = 0xFFFFFFFF

HEADER: Final = struct.Struct(">BBHII")
"""The header codec; ``HEADER.unpack_from(buf, offset)`` parses in place."""


def header(ftype: int, flags: int, stream_id: int, length: int) -> bytes:
    """Encode one header."""
    return HEADER.pack(VERSION, ftype, flags, stream_id, length)


def data_frame(stream_id: int, payload: bytes, flags: int = 0) -> bytes:
    """Header and payload in one object (used for small payloads and tests)."""
    return HEADER.pack(VERSION, TYPE_DATA, flags, stream_id, len(payload)) + payload


def window_update(stream_id: int, delta: int, flags: int = 0) -> bytes:
    return HEADER.pack(VERSION, TYPE_WINDOW_UPDATE, flags, stream_id, delta)


def ping(value: int, flags: int) -> bytes:
    return HEADER.pack(VERSION, TYPE_PING, flags, 0, value)


def go_away(code: int) -> bytes:
    return HEADER.pack(VERSION, TYPE_GO_AWAY, 0, 0, code)
