"""Events the sans-IO session returns from :meth:`YamuxSession.receive_data`."""

from __future__ import annotations

import dataclasses

from p2pkit.errors import MuxerError


@dataclasses.dataclass(slots=True)
class Event:
    """Base of every yamux event."""


@dataclasses.dataclass(slots=True)
class StreamOpened(Event):
    """The peer opened a stream (SYN).  Call ``accept(stream_id)`` when the app takes it."""

    stream_id: int


@dataclasses.dataclass(slots=True)
class StreamAcked(Event):
    """The peer acknowledged (ACK) a stream we opened."""

    stream_id: int


@dataclasses.dataclass(slots=True)
class DataReceived(Event):
    """Payload bytes for a stream (a frame may arrive as several of these)."""

    stream_id: int
    data: bytes


@dataclasses.dataclass(slots=True)
class StreamEOF(Event):
    """The peer half-closed the stream (FIN): no more data will arrive."""

    stream_id: int


@dataclasses.dataclass(slots=True)
class StreamReset(Event):
    """The peer reset the stream (RST), or refused our SYN."""

    stream_id: int


@dataclasses.dataclass(slots=True)
class WindowUpdated(Event):
    """Our send window on the stream grew (writers waiting on it may go on)."""

    stream_id: int
    window: int


@dataclasses.dataclass(slots=True)
class PingReceived(Event):
    """The peer pinged us; the answer is already queued in ``data_to_send()``."""

    value: int


@dataclasses.dataclass(slots=True)
class PongReceived(Event):
    """The peer answered our ping ``value``; ``rtt`` in the caller's time unit."""

    value: int
    rtt: float


@dataclasses.dataclass(slots=True)
class GoAwayReceived(Event):
    """The peer sent GoAway: code 0 = no new streams (existing ones finish)."""

    code: int


@dataclasses.dataclass(slots=True)
class ConnectionTerminated(Event):
    """The session is over (protocol error, or GoAway with an error code).

    For a protocol error of the peer, ``error`` is a
    :class:`~p2pkit_yamux.errors.YamuxProtocolError` and GoAway(1) is queued in
    ``data_to_send()``.
    """

    reason: str
    error: MuxerError


#: Alias: the event for a protocol error is a ConnectionTerminated with its error.
ProtocolErrorEvent = ConnectionTerminated
