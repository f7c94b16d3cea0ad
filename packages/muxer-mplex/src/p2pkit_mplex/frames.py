"""mplex wire format: flags, frame header encoding, stream keys.

A frame is ``uvarint(stream_id << 3 | flag) uvarint(length) data``.  Flags are named
after the role of the *sender* on that stream: a peer writing on a stream it opened
uses the ``*_INITIATOR`` flags, a peer writing on a stream the other side opened uses
the ``*_RECEIVER`` flags.  That is what keeps the two stream-id namespaces apart
(both sides count their own ids from 0).
"""

from __future__ import annotations

from enum import IntEnum
from typing import NamedTuple

from p2pkit.varint import encode_uvarint

MAX_MESSAGE_SIZE = 1 << 20
"""go-mplex and js-libp2p refuse (and kill the connection on) a longer message."""

MAX_HEADER_SIZE = 18
"""Two varints of at most 9 bytes each (:mod:`p2pkit.varint`)."""


class Flag(IntEnum):
    NEW_STREAM = 0
    MESSAGE_RECEIVER = 1
    MESSAGE_INITIATOR = 2
    CLOSE_RECEIVER = 3
    CLOSE_INITIATOR = 4
    RESET_RECEIVER = 5
    RESET_INITIATOR = 6


class StreamKey(NamedTuple):
    """Identifies a stream: the same number can be in use by both sides at once."""

    id: int
    opened_by_us: bool


def key_for_incoming(stream_id: int, flag: int) -> StreamKey:
    """The stream a received frame refers to.

    A ``*_RECEIVER`` flag (odd: 1, 3, 5) was sent by the receiver of the stream, so
    the stream is one *we* opened; ``*_INITIATOR`` flags (and NewStream) refer to
    streams the remote opened.
    """
    return StreamKey(stream_id, flag & 1 == 1)


def outgoing_flag(key: StreamKey, receiver_flag: Flag) -> int:
    """The flag we send for ``key``: the initiator variant is ``receiver_flag + 1``."""
    return receiver_flag + 1 if key.opened_by_us else int(receiver_flag)


def encode_header(stream_id: int, flag: int, length: int) -> bytes:
    """Header of one frame (both varints)."""
    h = (stream_id << 3) | flag
    if h < 0x80 and length < 0x80:
        return bytes((h, length))
    return encode_uvarint(h) + encode_uvarint(length)


def encode_frame(stream_id: int, flag: int, data: bytes = b"") -> bytes:
    """One complete frame (header + data); for control frames and small messages."""
    return encode_header(stream_id, flag, len(data)) + data
