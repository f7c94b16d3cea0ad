"""Events the sans-IO session returns from :meth:`YamuxSession.receive_data`.

Frozen, slotted dataclasses, as every sans-IO machine of p2pkit returns (see
``docs/sansio.md``).  A protocol error of the peer is not an event: ``receive_data``
raises :class:`~p2pkit_yamux.errors.YamuxProtocolError`.
"""

from __future__ import annotations

import dataclasses

from p2pkit.errors import MuxerError


@dataclasses.dataclass(frozen=True, slots=True)
class Event:
    """Base of every yamux event."""


@dataclasses.dataclass(frozen=True, slots=True)
class StreamOpened(Event):
    """The peer opened a stream (SYN).  Call ``accept(stream_id)`` when the app takes it."""

    stream_id: int


@dataclasses.dataclass(frozen=True, slots=True)
class StreamAcked(Event):
    """The peer acknowledged (ACK) a stream we opened."""

    stream_id: int


@dataclasses.dataclass(frozen=True, slots=True)
class DataReceived(Event):
    """Payload bytes for a stream (a frame may arrive as several of these)."""

    stream_id: int
    data: bytes


@dataclasses.dataclass(frozen=True, slots=True)
class StreamEOF(Event):
    """The peer half-closed the stream (FIN): no more data will arrive."""

    stream_id: int


@dataclasses.dataclass(frozen=True, slots=True)
class StreamReset(Event):
    """The peer reset the stream (RST), or refused our SYN."""

    stream_id: int


@dataclasses.dataclass(frozen=True, slots=True)
class WindowUpdated(Event):
    """Our send window on the stream grew (writers waiting on it may go on)."""

    stream_id: int
    window: int


@dataclasses.dataclass(frozen=True, slots=True)
class PingReceived(Event):
    """The peer pinged us; the answer is already queued in ``data_to_send()``."""

    value: int


@dataclasses.dataclass(frozen=True, slots=True)
class PongReceived(Event):
    """The peer answered our ping ``value``; ``rtt`` in the caller's time unit."""

    value: int
    rtt: float


@dataclasses.dataclass(frozen=True, slots=True)
class GoAwayReceived(Event):
    """The peer sent GoAway: code 0 = no new streams (existing ones finish)."""

    code: int


@dataclasses.dataclass(frozen=True, slots=True)
class ConnectionTerminated(Event):
    """The peer ended the session with a GoAway carrying an error code (it follows the
    :class:`GoAwayReceived` of the same frame); ``error`` is a
    :class:`~p2pkit_yamux.errors.YamuxGoAway`.  Later input is ignored."""

    reason: str
    error: MuxerError
