"""WebSocket framing (RFC 6455 section 5) as a sans-IO machine that streams payloads.

Why not the library's frame parser: ``websockets`` (and ``wsproto``) buffer each frame
until it is complete and hand it over as a new ``bytes`` object, a copy per layer and
a frame's worth of memory per connection.  libp2p sends one binary message per write
and never needs a message whole, so :class:`FrameReader` hands out payload bytes as
they arrive: a slice of the caller's buffer when the frame is unmasked (server to
client: no copy at all), one unmasking copy when it is masked (client to server, done by
``websockets``' C ``apply_mask`` in :meth:`Data.unmasked`).  What it buffers is at most
one frame header and one control payload (125 bytes), so a peer cannot grow memory by
sending large frames.

Conventions (``docs/sansio.md``): :meth:`FrameReader.receive_data` returns events;
protocol errors raise :class:`WsProtocolError`, whose ``code`` is the close code to send
(1002 protocol error or bad Close frame, 1003 text frame, 1007 Close reason not UTF-8,
1009 too big), after
which the reader stays dead.  The encoders return the bytes to send.
"""

from __future__ import annotations

import dataclasses
import os
import struct
from collections.abc import Iterator, Sequence

from websockets.exceptions import ProtocolError
from websockets.frames import Close
from websockets.speedups import apply_mask

from p2pkit.abc import Buffer
from p2pkit.errors import P2PError

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA

CLOSE_NORMAL = 1000
CLOSE_PROTOCOL_ERROR = 1002
CLOSE_UNSUPPORTED_DATA = 1003
CLOSE_INVALID_PAYLOAD = 1007
CLOSE_POLICY_VIOLATION = 1008
CLOSE_TOO_BIG = 1009

MAX_CONTROL_PAYLOAD = 125

SMALL_DATA = 512
"""Payloads shorter than this are unmasked at once and joined with the next ones of the
same read into one :class:`Data` event: a peer sending 1-byte frames cost ~40 MB of
event objects and a call through the whole receive path per byte (1 MiB read: 150,000
frames)."""

MASK_PIECE = 128 * 1024
"""Masking and unmasking make a new buffer; in pieces this size (a multiple of 4, so the
key does not rotate) the allocator keeps reusing the same memory, where 1 MiB buffers
got fresh pages each time: upload CPU per GB (both ends) 1.3-1.5 s -> 1.2 s, against
TCP's 1.05 s (``benchmarks/ws_throughput.py --cpu-child``)."""


class WsProtocolError(P2PError):
    """The peer broke RFC 6455 (or our limits); ``code`` is the close code to answer."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"websocket: {message} (close {code})")
        self.code = code


@dataclasses.dataclass(frozen=True, slots=True)
class Data:
    """Payload bytes of a binary message, in order, as received: a slice of the buffer
    given to ``receive_data`` (valid during that call only), still masked when ``mask``
    is set.  :meth:`unmasked` gives the payload; unmasking one event at a time, each
    used before the next is made, lets the allocator reuse one block (unmasking every
    frame of a read up front cost 5-10x more: fresh pages per frame)."""

    payload: memoryview
    mask: bytes | None = None

    def unmasked(self) -> memoryview:
        if self.mask is None:
            return self.payload
        return memoryview(apply_mask(self.payload, self.mask))

    def pieces(self) -> Iterator[memoryview]:
        """The payload unmasked in pieces of at most :data:`MASK_PIECE` bytes (one piece,
        uncopied, when it is not masked); use each before taking the next."""
        payload, mask = self.payload, self.mask
        if mask is None:
            yield payload
            return
        for start in range(0, len(payload), MASK_PIECE):  # a multiple of 4: same key
            yield memoryview(apply_mask(payload[start : start + MASK_PIECE], mask))


@dataclasses.dataclass(frozen=True, slots=True)
class Ping:
    payload: bytes


@dataclasses.dataclass(frozen=True, slots=True)
class Pong:
    payload: bytes


@dataclasses.dataclass(frozen=True, slots=True)
class CloseReceived:
    """The peer's Close frame: no more data comes from it (``code`` 1005: none given)."""

    code: int
    reason: str


Event = Data | Ping | Pong | CloseReceived

_HEAD = struct.Struct("!BB")
_LEN16 = struct.Struct("!H")
_LEN64 = struct.Struct("!Q")


class FrameReader:
    """Parses frames from the peer (see the module docstring).

    ``expect_masked``: True on the server side (clients must mask, servers must not).
    ``max_message_size``: a message (all its fragments) larger than this is a 1009.
    ``pongs``: report Pong frames (False: dropped as parsed, no event for a flood).
    """

    def __init__(self, *, expect_masked: bool, max_message_size: int, pongs: bool = True) -> None:
        self._expect_masked = expect_masked
        self._pongs = pongs
        self._max_message = max_message_size
        self._head = bytearray()  # a frame header split across reads
        self._remaining = 0  # payload bytes left in the current frame
        self._in_payload = False
        self._opcode = 0
        self._masks: tuple[bytes, bytes, bytes, bytes] | None = None  # by payload offset % 4
        self._offset = 0  # payload bytes of the current frame already seen
        self._control = bytearray()  # a control frame's payload (<= 125 bytes)
        self._in_message = False  # a fragmented binary message is going on
        self._message_size = 0
        self._dead: WsProtocolError | None = None
        self.closed = False  # the peer's Close frame arrived

    def receive_data(self, data: memoryview) -> list[Event]:
        if self._dead is not None:
            raise self._dead
        try:
            return self._receive(data)
        except WsProtocolError as exc:
            self._dead = exc
            raise

    def _receive(self, data: memoryview) -> list[Event]:
        events: list[Event] = []
        small: bytearray | None = None  # payloads under SMALL_DATA bytes, joined
        pos, end = 0, len(data)
        while pos < end:
            if self.closed:
                raise WsProtocolError(CLOSE_PROTOCOL_ERROR, "data after the Close frame")
            if not self._in_payload:
                pos = self._read_header(data, pos, end)
                if not self._in_payload or self._remaining:
                    continue  # header incomplete, or a payload follows
            else:
                n = min(self._remaining, end - pos)
                chunk = data[pos : pos + n]
                pos += n
                self._remaining -= n
                mask = None if self._masks is None else self._masks[self._offset & 3]
                self._offset += n
                if self._opcode == OP_BINARY:
                    if n < SMALL_DATA:  # one event for a run of them, not one each
                        if small is None:
                            small = bytearray()
                        small += chunk if mask is None else apply_mask(chunk, mask)
                    else:
                        if small is not None:
                            events.append(Data(memoryview(small)))
                            small = None
                        events.append(Data(chunk, mask))
                else:
                    self._control += chunk if mask is None else apply_mask(chunk, mask)
                if self._remaining:
                    continue
            self._in_payload = False  # the frame is complete
            if self._opcode != OP_BINARY:
                event = self._control_event()
                if event is not None:
                    if small is not None:
                        events.append(Data(memoryview(small)))
                        small = None
                    events.append(event)
        if small is not None:
            events.append(Data(memoryview(small)))
        return events

    def _read_header(self, data: memoryview, pos: int, end: int) -> int:
        head = self._head
        if head:  # continue a header split across reads
            need = _header_size(head) - len(head)
            take = min(need, end - pos)
            head += data[pos : pos + take]
            pos += take
            need = _header_size(head) - len(head)
            if need > 0:
                take = min(need, end - pos)
                head += data[pos : pos + take]
                pos += take
            if len(head) < _header_size(head):
                return pos
            self._start_frame(bytes(head))
            head.clear()
            return pos
        if end - pos >= 2:
            size = _header_size(data[pos : pos + 2])
            if end - pos >= size:
                self._start_frame(bytes(data[pos : pos + size]))
                return pos + size
        head += data[pos:end]
        return end

    def _start_frame(self, head: bytes) -> None:
        b0, b1 = head[0], head[1]
        fin, opcode, masked = b0 & 0x80, b0 & 0x0F, b1 & 0x80
        if b0 & 0x70:
            raise WsProtocolError(CLOSE_PROTOCOL_ERROR, "reserved bits set (no extension agreed)")
        if bool(masked) != self._expect_masked:
            which = "unmasked frame from a client" if self._expect_masked else "masked frame"
            raise WsProtocolError(CLOSE_PROTOCOL_ERROR, which)
        length = b1 & 0x7F
        at = 2
        if length == 126:
            length = _LEN16.unpack_from(head, 2)[0]
            at = 4
        elif length == 127:
            length = _LEN64.unpack_from(head, 2)[0]
            at = 10
            if length >> 63:
                raise WsProtocolError(CLOSE_PROTOCOL_ERROR, "frame length out of range")
        if opcode >= 0x8:
            if opcode not in (OP_CLOSE, OP_PING, OP_PONG):
                raise WsProtocolError(CLOSE_PROTOCOL_ERROR, f"unknown opcode {opcode:#x}")
            if not fin or length > MAX_CONTROL_PAYLOAD:
                raise WsProtocolError(CLOSE_PROTOCOL_ERROR, "fragmented or long control frame")
            self._control.clear()
        elif opcode == OP_TEXT:
            raise WsProtocolError(CLOSE_UNSUPPORTED_DATA, "text frame (binary messages only)")
        elif opcode == OP_BINARY or opcode == OP_CONT:
            if (opcode == OP_CONT) != self._in_message:
                raise WsProtocolError(CLOSE_PROTOCOL_ERROR, "unexpected continuation state")
            if opcode == OP_BINARY:
                self._message_size = 0
            self._message_size += length
            if self._message_size > self._max_message:
                raise WsProtocolError(CLOSE_TOO_BIG, f"message over {self._max_message} bytes")
            self._in_message = not fin
            opcode = OP_BINARY
        else:
            raise WsProtocolError(CLOSE_PROTOCOL_ERROR, f"unknown opcode {opcode:#x}")
        self._opcode = opcode
        self._remaining = length
        self._offset = 0
        self._in_payload = True
        if masked:
            m = head[at : at + 4]
            self._masks = (m, m[1:] + m[:1], m[2:] + m[:2], m[3:] + m[:3])
        else:
            self._masks = None

    def _control_event(self) -> Event | None:
        """The event of a complete control frame; None for a Pong nobody wants."""
        if self._opcode == OP_PONG and not self._pongs:
            self._control.clear()
            return None
        payload = bytes(self._control)
        self._control.clear()
        if self._opcode == OP_PING:
            return Ping(payload)
        if self._opcode == OP_PONG:
            return Pong(payload)
        self.closed = True
        try:
            close = Close.parse(payload)
        except UnicodeDecodeError as exc:  # RFC 6455 7.4.1: 1007 is for bad data
            raise WsProtocolError(CLOSE_INVALID_PAYLOAD, f"bad Close reason: {exc}") from exc
        except ProtocolError as exc:  # 1 byte, or a code no endpoint may send: 1002
            raise WsProtocolError(CLOSE_PROTOCOL_ERROR, f"bad Close frame: {exc}") from exc
        return CloseReceived(close.code, close.reason)


def _header_size(first: Buffer) -> int:
    """Header length from its first two bytes (2 when fewer are known)."""
    view = memoryview(first)
    if len(view) < 2:
        return 2
    b1 = view[1]
    n = 2 + (4 if b1 & 0x80 else 0)
    length = b1 & 0x7F
    return n + (2 if length == 126 else 8 if length == 127 else 0)


class FrameWriter:
    """Builds our frames; ``mask`` is True on the client side (RFC 6455 5.3)."""

    def __init__(self, *, mask: bool, max_frame_size: int) -> None:
        self._mask = mask
        self._max = max_frame_size

    def message(self, parts: Sequence[Buffer]) -> list[Buffer]:
        """One binary message per ``max_frame_size`` bytes of ``parts`` (each one frame):
        the buffers to write, in order.  Unmasked payloads are passed through uncopied."""
        if len(parts) == 1:
            payload: Buffer = parts[0]
        else:
            total = sum(len(p) if isinstance(p, bytes) else memoryview(p).nbytes for p in parts)
            if not self._mask and 4096 <= total <= self._max:  # a muxer's header + payload
                return [self._header(OP_BINARY, total), *parts]
            payload = b"".join(parts)
        size = len(payload) if isinstance(payload, bytes) else memoryview(payload).nbytes
        if size <= self._max:
            return self._frame(OP_BINARY, payload, size)
        view = memoryview(payload).cast("B")
        out: list[Buffer] = []
        for start in range(0, size, self._max):
            piece = view[start : start + self._max]
            out += self._frame(OP_BINARY, piece, len(piece))
        return out

    def control(self, opcode: int, payload: bytes = b"") -> bytes:
        return b"".join(bytes(p) for p in self._frame(opcode, payload, len(payload)))

    def close(self, code: int, reason: str = "") -> bytes:
        return self.control(OP_CLOSE, Close(code, reason[:100]).serialize())

    def _header(self, opcode: int, size: int) -> bytes:
        b0 = 0x80 | opcode
        mbit = 0x80 if self._mask else 0
        if size < 126:
            return _HEAD.pack(b0, mbit | size)
        if size < 65536:
            return _HEAD.pack(b0, mbit | 126) + _LEN16.pack(size)
        return _HEAD.pack(b0, mbit | 127) + _LEN64.pack(size)

    def _frame(self, opcode: int, payload: Buffer, size: int) -> list[Buffer]:
        head = self._header(opcode, size)
        if not self._mask:
            if size < 4096:
                return [head + bytes(payload)]
            return [head, payload]
        key = os.urandom(4)
        if size < 4096:
            return [head + key + apply_mask(payload, key)]
        view = memoryview(payload).cast("B")
        out: list[Buffer] = [head + key]
        for start in range(0, size, MASK_PIECE):  # a multiple of 4: the key does not rotate
            out.append(apply_mask(view[start : start + MASK_PIECE], key))
        return out
