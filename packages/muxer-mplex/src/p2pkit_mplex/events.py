"""The events :meth:`~p2pkit_mplex.session.MplexSession.receive_data` returns.

Frozen dataclasses (the sans-IO convention, ``docs/sansio.md``); the shell tells them
apart with ``type(event) is ...`` on its per-frame path.
"""

from __future__ import annotations

import dataclasses

from p2pkit_mplex.frames import StreamKey

__all__ = ["DataReceived", "Event", "StreamEnded", "StreamOpened", "StreamReset"]


@dataclasses.dataclass(frozen=True, slots=True)
class StreamOpened:
    """The remote opened a stream (NewStream); ``name`` is informational only."""

    key: StreamKey
    name: str


@dataclasses.dataclass(frozen=True, slots=True)
class DataReceived:
    """Payload for an open stream.  Report it consumed with
    :meth:`~p2pkit_mplex.session.MplexSession.consumed`."""

    key: StreamKey
    data: bytes


@dataclasses.dataclass(frozen=True, slots=True)
class StreamEnded:
    """The remote half-closed the stream: EOF after the data already delivered."""

    key: StreamKey


@dataclasses.dataclass(frozen=True, slots=True)
class StreamReset:
    """The stream is gone: reset by the remote (``by_remote``) or by the session itself
    because its reader fell too far behind (see
    :attr:`~p2pkit_mplex.session.MplexSession.congested`)."""

    key: StreamKey
    by_remote: bool
    reason: str


Event = StreamOpened | DataReceived | StreamEnded | StreamReset
