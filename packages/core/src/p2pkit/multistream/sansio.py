"""multistream-select 1.0 as pure state machines: bytes in, bytes out, no I/O, no clock.

Wire format (multiformats/multistream-select, libp2p/specs connections/README.md):
every message is ``uvarint(len(payload)) + payload`` where ``payload`` is the UTF-8
text followed by ``"\\n"`` (the length counts the newline).  Both sides start with the
header ``/multistream/1.0.0``; the initiator then proposes protocol ids one at a time
and the responder answers each with the same id (accepted) or ``na``.  ``ls`` asks the
responder for its list, answered by one message whose payload is the concatenation
of the encoded ids followed by a final ``"\\n"``.

Everything read after the last negotiation message belongs to the selected protocol:
the machines stop parsing exactly there and keep the surplus for
:meth:`MessageReader.leftover`, so application data that arrived in the same packet is
never lost or misparsed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence

from p2pkit.errors import (
    MessageTooLarge,
    NegotiationError,
    ProtocolError,
    ProtocolNotSupported,
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
    :meth:`leftover`.  A length prefix above the limit raises
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

    def leftover(self) -> bytes:
        """Return and forget every byte not consumed as a message (the next protocol's)."""
        data = bytes(self._buf)
        self._buf.clear()
        return data

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


class Initiator:
    """The dialer's side: send our header and proposals, read the responder's answers.

    ``initial_bytes()`` returns header + first proposal in one buffer: send it at once,
    never wait for the responder's header first (js as responder stays silent until it
    has read ours).  Then feed every received chunk to :meth:`receive_data` and send
    what it returns, until :attr:`done`.  The bytes after the last negotiation message
    are in :meth:`leftover`.

    ``lazy=True`` (exactly one protocol; rust's V1Lazy, go's lazy client): the protocol
    counts as :attr:`selected` from the start so application data may follow the
    proposal in the same write; the responder's header and echo must still be fed
    (before any application byte is read) and an ``na`` then raises
    :class:`~p2pkit.errors.ProtocolNotSupported`.
    """

    def __init__(self, protocols: Sequence[str], *, lazy: bool = False) -> None:
        if isinstance(protocols, str):
            raise TypeError("protocols must be a sequence of ids, not one string")
        if not protocols:
            raise ValueError("at least one protocol must be proposed")
        if lazy and len(protocols) != 1:
            raise ValueError("lazy negotiation needs exactly one protocol")
        self.protocols = [check_protocol_id(p) for p in protocols]
        self.lazy = lazy
        self._reader = MessageReader()
        self._index = 0
        self._started = False
        self._got_header = False
        self._done = False
        self._selected: str | None = self.protocols[0] if lazy else None

    @property
    def done(self) -> bool:
        """True once the responder's answers are fully consumed (and accepted)."""
        return self._done

    @property
    def selected(self) -> str | None:
        """The protocol to speak now (lazy: from the start), else None."""
        return self._selected

    def initial_bytes(self) -> bytes:
        """Header and first proposal, to be sent in one write.  Call exactly once."""
        if self._started:
            raise RuntimeError("initial_bytes() already called")
        self._started = True
        return HEADER + encode_message(self.protocols[0])

    def receive_data(self, data: bytes | bytearray | memoryview) -> bytes:
        """Feed received bytes; return what to send next (often b"")."""
        if not self._started:
            raise RuntimeError("call initial_bytes() first")
        if self._done:
            self._reader.feed(data)
            return b""
        self._reader.feed(data)
        out: list[bytes] = []
        while not self._done:
            msg = self._reader.next_message()
            if msg is None:
                break
            if not self._got_header:
                if msg != PROTOCOL_ID:
                    raise NegotiationError(f"unexpected multistream header {msg[:64]!r}")
                self._got_header = True
                continue
            proposed = self.protocols[self._index]
            if msg == proposed:
                self._selected = proposed
                self._done = True
            elif msg == NA:
                self._index += 1
                if self.lazy or self._index >= len(self.protocols):
                    raise ProtocolNotSupported(list(self.protocols))
                out.append(encode_message(self.protocols[self._index]))
            else:
                raise NegotiationError(
                    f"responder answered {msg[:64]!r} to the proposal {proposed!r}"
                )
        return b"".join(out)

    def leftover(self) -> bytes:
        """Bytes received after the last negotiation message (the next protocol's)."""
        return self._reader.leftover()


class ListRequest:
    """Ask a responder for its protocols with ``ls`` (a probe: close the stream after).

    ``initial_bytes()`` is header + ``ls``; feed the answers until :attr:`done`, then
    :attr:`protocols` holds the list (None if the responder answered ``na``).
    """

    def __init__(self, *, max_response_size: int = MAX_LS_RESPONSE_SIZE) -> None:
        self._reader = MessageReader()
        self._max = max_response_size
        self._got_header = False
        self._done = False
        self.protocols: list[str] | None = None

    @property
    def done(self) -> bool:
        return self._done

    def initial_bytes(self) -> bytes:
        return HEADER + LS_MESSAGE

    def receive_data(self, data: bytes | bytearray | memoryview) -> bytes:
        self._reader.feed(data)
        if not self._got_header and not self._done:
            msg = self._reader.next_message()
            if msg is None:
                return b""
            if msg != PROTOCOL_ID:
                raise NegotiationError(f"unexpected multistream header {msg[:64]!r}")
            self._got_header = True
        if self._got_header and not self._done:
            frame = self._reader.next_frame(self._max)
            if frame is not None:
                self._done = True
                if frame != b"na\n":
                    self.protocols = decode_ls_response(frame)
        return b""

    def leftover(self) -> bytes:
        return self._reader.leftover()


class Responder:
    """The listener's side: answer the initiator's header and proposals.

    The responder sends its header as soon as it has read the initiator's (what js
    does; ``eager_header=True`` sends it up front in :meth:`initial_bytes`, as go
    does).  Each proposal is answered with the id when ``is_supported(id)``, else
    ``na``; ``ls`` is answered with ``supported`` when given, else ``na``.
    ``is_supported`` may also be a sequence of ids (then it doubles as the ``ls``
    list).
    """

    def __init__(
        self,
        is_supported: Callable[[str], bool] | Sequence[str],
        *,
        supported: Sequence[str] | None = None,
        eager_header: bool = False,
        max_proposals: int = MAX_PROPOSALS,
    ) -> None:
        if isinstance(is_supported, str):
            raise TypeError("is_supported must be a callable or a sequence of ids")
        if callable(is_supported):
            self._is_supported: Callable[[str], bool] = is_supported
        else:
            ids = frozenset(is_supported)
            self._is_supported = ids.__contains__
            if supported is None:
                supported = list(is_supported)
        self.supported = None if supported is None else [check_protocol_id(p) for p in supported]
        self.eager_header = eager_header
        self.max_proposals = max_proposals
        self._reader = MessageReader()
        self._header_sent = False
        self._got_header = False
        self._proposals = 0
        self._done = False
        self._selected: str | None = None

    @property
    def done(self) -> bool:
        return self._done

    @property
    def selected(self) -> str | None:
        return self._selected

    def initial_bytes(self) -> bytes:
        """Our header when ``eager_header``, else b"" (sent after the peer's header)."""
        if self.eager_header and not self._header_sent:
            self._header_sent = True
            return HEADER
        return b""

    def receive_data(self, data: bytes | bytearray | memoryview) -> bytes:
        """Feed received bytes; return the answers to send (header, ids, ``na``)."""
        self._reader.feed(data)
        out: list[bytes] = []
        while not self._done:
            msg = self._reader.next_message()
            if msg is None:
                break
            if not self._got_header:
                if msg != PROTOCOL_ID:
                    raise NegotiationError(f"unexpected multistream header {msg[:64]!r}")
                self._got_header = True
                if not self._header_sent:
                    self._header_sent = True
                    out.append(HEADER)
                continue
            self._proposals += 1
            if self._proposals > self.max_proposals:
                raise NegotiationError(f"peer made more than {self.max_proposals} proposals")
            if msg == LS:
                if self.supported is None:
                    out.append(NA_MESSAGE)
                else:
                    out.append(encode_ls_response(self.supported))
            elif msg != NA and msg != PROTOCOL_ID and self._is_supported(msg):
                self._selected = msg
                self._done = True
                out.append(encode_message(msg))
            else:
                out.append(NA_MESSAGE)
        return b"".join(out)

    def leftover(self) -> bytes:
        """Bytes received after the accepted proposal (the selected protocol's data)."""
        return self._reader.leftover()
