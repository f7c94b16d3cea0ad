"""multistream-select 1.0 as pure state machines: bytes in, events and bytes out.

No I/O, no clock.  The wire format (:mod:`p2pkit.multistream.messages`): every message
is ``uvarint(len(payload)) + payload`` with ``payload`` the UTF-8 text and ``"\\n"``.
Both sides start with the header ``/multistream/1.0.0``; the initiator then proposes
protocol ids one at a time and the responder answers each with the same id (accepted)
or ``na``; ``ls`` asks the responder for its list.

Everything read after the last negotiation message belongs to the selected protocol:
the machines stop parsing exactly there and keep the surplus in their ``leftover``
property, so application data that arrived in the same packet is never lost or
misparsed.

The machines follow the convention of every p2pkit sans-IO machine (``docs/sansio.md``):
the constructor queues what is sent first, ``receive_data(data) -> list[Event]``,
``data_to_send() -> bytes``, frozen event dataclasses, ``done`` once the exchange is
over, and a typed :class:`~p2pkit.errors.NegotiationError` raised from
``receive_data`` for a peer that breaks the protocol (the machine is dead then: every
later call raises the same error).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

from p2pkit.errors import NegotiationError, ProtocolNotSupported
from p2pkit.multistream.messages import (
    HEADER,
    LS,
    LS_MESSAGE,
    MAX_LS_RESPONSE_SIZE,
    MAX_PROPOSALS,
    NA,
    NA_MESSAGE,
    PROTOCOL_ID,
    MessageReader,
    check_protocol_id,
    decode_ls_response,
    encode_ls_response,
    encode_message,
)

__all__ = [
    "Event",
    "Initiator",
    "ListRequest",
    "ListRequested",
    "ProtocolRefused",
    "ProtocolSelected",
    "ProtocolsListed",
    "Responder",
]


# -- events ----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class ProtocolSelected:
    """Negotiation is over: ``protocol`` is spoken from now on (both roles).  Bytes
    received after it are in the machine's ``leftover``."""

    protocol: str


@dataclasses.dataclass(frozen=True, slots=True)
class ProtocolRefused:
    """``protocol`` was refused with ``na``: by the responder (initiator side; the next
    proposal is queued), or by us (responder side)."""

    protocol: str


@dataclasses.dataclass(frozen=True, slots=True)
class ListRequested:
    """Responder side: the initiator sent ``ls`` and the answer is queued."""


@dataclasses.dataclass(frozen=True, slots=True)
class ProtocolsListed:
    """:class:`ListRequest` side: the responder's answer to ``ls`` (None: it said ``na``)."""

    protocols: tuple[str, ...] | None


Event = ProtocolSelected | ProtocolRefused | ListRequested | ProtocolsListed


class _Machine:
    """What the three machines share: the reader, the outbox, ``done`` and the error."""

    def __init__(self) -> None:
        self._reader = MessageReader()
        self._outbox: list[bytes] = []
        self._done = False
        self._got_header = False
        self.error: NegotiationError | None = None
        """The error :meth:`receive_data` raised, if any (raised again by every later call)."""

    @property
    def done(self) -> bool:
        """True once the exchange is over (later bytes go to :attr:`leftover`)."""
        return self._done

    @property
    def leftover(self) -> bytes:
        """Bytes received after the last negotiation message (the next protocol's)."""
        return self._reader.leftover

    def data_to_send(self) -> bytes:
        """Bytes to send now (the opening bytes after construction, then answers)."""
        out = b"".join(self._outbox)
        self._outbox.clear()
        return out

    def receive_data(self, data: bytes | bytearray | memoryview) -> list[Event]:
        """Feed received bytes; return what happened.  Raises NegotiationError (or its
        subclasses MessageTooLarge, ProtocolNotSupported) when the exchange fails."""
        if self.error is not None:
            raise self.error
        self._reader.feed(data)
        events: list[Event] = []
        if self._done:
            return events
        try:
            self._parse(events)
        except NegotiationError as exc:
            self.error = exc
            raise
        return events

    def _header(self, msg: str) -> None:
        if msg != PROTOCOL_ID:
            raise NegotiationError(f"unexpected multistream header {msg[:64]!r}")
        self._got_header = True

    def _parse(self, events: list[Event]) -> None:
        raise NotImplementedError


class Initiator(_Machine):
    """The dialer's side: send our header and proposals, read the responder's answers.

    The constructor queues header + first proposal (one buffer): send
    :meth:`data_to_send` at once, never wait for the responder's header first (js as
    responder stays silent until it has read ours).  Then feed every received chunk to
    :meth:`receive_data` and send :meth:`data_to_send`, until :attr:`done`
    (:class:`ProtocolSelected`).  An ``na`` to the last proposal raises
    :class:`~p2pkit.errors.ProtocolNotSupported`.

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
        super().__init__()
        self.protocols = [check_protocol_id(p) for p in protocols]
        self.lazy = lazy
        self._index = 0
        self._selected: str | None = self.protocols[0] if lazy else None
        self._outbox.append(HEADER + encode_message(self.protocols[0]))

    @property
    def selected(self) -> str | None:
        """The protocol to speak now (lazy: from the start), else None."""
        return self._selected

    def _parse(self, events: list[Event]) -> None:
        while not self._done:
            msg = self._reader.next_message()
            if msg is None:
                break
            if not self._got_header:
                self._header(msg)
                continue
            proposed = self.protocols[self._index]
            if msg == proposed:
                self._selected = proposed
                self._done = True
                events.append(ProtocolSelected(proposed))
            elif msg == NA:
                events.append(ProtocolRefused(proposed))
                self._index += 1
                if self.lazy or self._index >= len(self.protocols):
                    raise ProtocolNotSupported(list(self.protocols))
                self._outbox.append(encode_message(self.protocols[self._index]))
            else:
                raise NegotiationError(
                    f"responder answered {msg[:64]!r} to the proposal {proposed!r}"
                )


class ListRequest(_Machine):
    """Ask a responder for its protocols with ``ls`` (a probe: close the stream after).

    The constructor queues header + ``ls``; feed the answers until :attr:`done`
    (:class:`ProtocolsListed`), then :attr:`protocols` holds the list (None if the
    responder answered ``na``).
    """

    def __init__(self, *, max_response_size: int = MAX_LS_RESPONSE_SIZE) -> None:
        super().__init__()
        self._max = max_response_size
        self.protocols: list[str] | None = None
        self._outbox.append(HEADER + LS_MESSAGE)

    def _parse(self, events: list[Event]) -> None:
        if not self._got_header:
            msg = self._reader.next_message()
            if msg is None:
                return
            self._header(msg)
        frame = self._reader.next_frame(self._max)
        if frame is not None:
            self._done = True
            if frame != b"na\n":
                self.protocols = decode_ls_response(frame)
            listed = None if self.protocols is None else tuple(self.protocols)
            events.append(ProtocolsListed(listed))


class Responder(_Machine):
    """The listener's side: answer the initiator's header and proposals.

    The responder sends its header as soon as it has read the initiator's (what js
    does; ``eager_header=True`` queues it at construction, as go does).  Each proposal
    is answered with the id when ``is_supported(id)`` (:class:`ProtocolSelected`), else
    ``na`` (:class:`ProtocolRefused`); ``ls`` is answered with ``supported`` when given,
    else ``na``.  ``is_supported`` may also be a sequence of ids (then it doubles as the
    ``ls`` list).
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
        super().__init__()
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
        self._header_sent = eager_header
        self._proposals = 0
        self._selected: str | None = None
        if eager_header:
            self._outbox.append(HEADER)

    @property
    def selected(self) -> str | None:
        """The accepted protocol, once :attr:`done`."""
        return self._selected

    def _parse(self, events: list[Event]) -> None:
        out = self._outbox
        while not self._done:
            msg = self._reader.next_message()
            if msg is None:
                break
            if not self._got_header:
                self._header(msg)
                if not self._header_sent:
                    self._header_sent = True
                    out.append(HEADER)
                continue
            self._proposals += 1
            if self._proposals > self.max_proposals:
                raise NegotiationError(f"peer made more than {self.max_proposals} proposals")
            if msg == LS:
                out.append(
                    NA_MESSAGE if self.supported is None else encode_ls_response(self.supported)
                )
                events.append(ListRequested())
            elif msg != NA and msg != PROTOCOL_ID and self._is_supported(msg):
                self._selected = msg
                self._done = True
                out.append(encode_message(msg))
                events.append(ProtocolSelected(msg))
            else:
                out.append(NA_MESSAGE)
                events.append(ProtocolRefused(msg))
