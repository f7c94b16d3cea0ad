"""multistream-select 1.0 wire format: messages, ``ls`` lists, and an on-demand reader.

Wire format (multiformats/multistream-select, libp2p/specs connections/README.md):
every message is ``uvarint(len(payload)) + payload`` where ``payload`` is the UTF-8
text followed by ``"\\n"`` (the length counts the newline).  Both sides start with the
header ``/multistream/1.0.0``; the initiator then proposes protocol ids one at a time
and the responder answers each with the same id (accepted) or ``na``.  ``ls`` asks the
responder for its list, answered by one message whose payload is the concatenation
of the encoded ids followed by a final ``"\\n"``.

The state machines that use them are in :mod:`p2pkit.multistream.sansio`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from p2pkit.errors import (
    MessageTooLarge,
    NegotiationError,
    ProtocolError,
)
from p2pkit.varint import decode_uvarint, encode_uvarint

PROTOCOL_ID = "/multistream/1.0.0"
NA = "na"
LS = "ls"

MAX_MESSAGE_SIZE = 1024
"""Largest length prefix accepted for a single message (id + newline), as go and js."""

MAX_LS_RESPONSE_SIZE = 64 * 1024
"""Largest ``ls`` answer an initiator accepts (it lists many ids in one message)."""

MAX_PROPOSALS = 100
"""Proposals (and ``ls`` requests) a responder answers before giving up on the peer."""

MAX_LS_ENTRIES = 1000


def encode_message(msg: str) -> bytes:
    """Encode one message: ``uvarint(len + 1) + utf8(msg) + "\\n"``."""
    payload = msg.encode()
    return encode_uvarint(len(payload) + 1) + payload + b"\n"


def encode_messages(*msgs: str) -> bytes:
    """Encode several messages into one buffer (one write, one packet)."""
    return b"".join(encode_message(m) for m in msgs)


HEADER = encode_message(PROTOCOL_ID)
NA_MESSAGE = encode_message(NA)
LS_MESSAGE = encode_message(LS)


def encode_ls_response(protocols: Iterable[str]) -> bytes:
    """Encode the answer to ``ls``: one message holding every id encoded, then ``"\\n"``."""
    body = b"".join(encode_message(p) for p in protocols) + b"\n"
    return encode_uvarint(len(body)) + body


def decode_ls_response(payload: bytes) -> list[str]:
    """Parse the payload of an ``ls`` answer (as returned by :meth:`MessageReader.next_frame`)."""
    reader = MessageReader(max_message_size=MAX_MESSAGE_SIZE)
    if not payload.endswith(b"\n"):
        raise NegotiationError("ls response does not end with a newline")
    reader.feed(payload[:-1])
    out: list[str] = []
    while True:
        msg = reader.next_message()
        if msg is None:
            break
        if len(out) >= MAX_LS_ENTRIES:
            raise NegotiationError("ls response lists too many protocols")
        out.append(msg)
    if reader.buffered:
        raise NegotiationError("truncated entry in ls response")
    return out


def check_protocol_id(protocol: str) -> str:
    """Validate a local protocol id before it is sent (a programming error if bad)."""
    if not protocol or "\n" in protocol:
        raise ValueError(f"invalid protocol id {protocol!r}: empty or contains a newline")
    if protocol in (NA, LS, PROTOCOL_ID):
        raise ValueError(f"{protocol!r} is a multistream-select keyword, not a protocol id")
    if len(protocol.encode()) + 1 > MAX_MESSAGE_SIZE:
        raise ValueError(f"protocol id longer than {MAX_MESSAGE_SIZE - 1} bytes")
    return protocol


class MessageReader:
    """Splits received bytes into multistream messages, one at a time, on demand.

    Messages are only parsed when asked for (:meth:`next_message`), so a caller that
    stops after the last negotiation message leaves the following bytes untouched in
    :attr:`leftover`.  A length prefix above the limit raises
    :class:`~p2pkit.errors.MessageTooLarge` as soon as the prefix is readable, before
    the body is waited for.
    """

    __slots__ = ("_buf", "max_message_size")

    def __init__(self, *, max_message_size: int = MAX_MESSAGE_SIZE) -> None:
        self._buf = bytearray()
        self.max_message_size = max_message_size

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        self._buf += data

    @property
    def buffered(self) -> int:
        """Bytes received and not yet returned as a message."""
        return len(self._buf)

    @property
    def leftover(self) -> bytes:
        """Every byte not consumed as a message (the next protocol's)."""
        return bytes(self._buf)

    def next_frame(self, max_size: int | None = None) -> bytes | None:
        """The next raw payload (including its trailing newline), or None if incomplete."""
        limit = self.max_message_size if max_size is None else max_size
        buf = self._buf
        try:
            decoded = decode_uvarint(buf)
        except ProtocolError as exc:
            raise NegotiationError(f"bad length prefix: {exc}") from exc
        if decoded is None:
            # Even an incomplete prefix can already prove the message is too large.
            if len(buf) >= len(encode_uvarint(limit)):
                raise MessageTooLarge(f"multistream message longer than {limit} bytes")
            return None
        length, start = decoded
        if length > limit:
            raise MessageTooLarge(f"multistream message of {length} bytes (limit {limit})")
        end = start + length
        if len(buf) < end:
            return None
        frame = bytes(buf[start:end])
        del buf[:end]
        return frame

    def next_message(self) -> str | None:
        """The next message as text (newline stripped), or None if incomplete.

        Raises NegotiationError unless the payload is non-empty valid UTF-8 ending
        in exactly one newline.
        """
        frame = self.next_frame()
        if frame is None:
            return None
        return parse_message(frame)

    def messages(self) -> Iterator[str]:
        """Yield complete messages lazily; stop consuming whenever the caller stops."""
        while (msg := self.next_message()) is not None:
            yield msg


def parse_message(frame: bytes) -> str:
    """Check and decode one payload (``text + "\\n"``)."""
    if not frame.endswith(b"\n"):
        raise NegotiationError("multistream message does not end with a newline")
    body = frame[:-1]
    if not body:
        raise NegotiationError("empty multistream message")
    if b"\n" in body:
        raise NegotiationError("newline inside a multistream message")
    try:
        return body.decode()
    except UnicodeDecodeError as exc:
        raise NegotiationError("multistream message is not valid UTF-8") from exc
