"""p2pkit_mplex: the mplex stream muxer (``/mplex/6.7.0``) for p2pkit.

The sans-IO core (:class:`MplexSession`) is importable without asyncio machinery; the
asyncio shell (:class:`MplexMuxer`) is imported lazily on first attribute access.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from p2pkit_mplex.frames import MAX_MESSAGE_SIZE, PROTOCOL_ID, Flag, StreamKey, encode_frame
from p2pkit_mplex.options import MplexOptions
from p2pkit_mplex.session import (
    DataReceived,
    Event,
    MplexControlFlood,
    MplexFrameTooLarge,
    MplexProtocolError,
    MplexSession,
    StreamEnded,
    StreamOpened,
    StreamReset,
)

if TYPE_CHECKING:
    from p2pkit_mplex.shell import MplexConnection, MplexMuxer, MplexStream

__all__ = [
    "MAX_MESSAGE_SIZE",
    "PROTOCOL_ID",
    "DataReceived",
    "Event",
    "Flag",
    "MplexConnection",
    "MplexControlFlood",
    "MplexFrameTooLarge",
    "MplexMuxer",
    "MplexOptions",
    "MplexProtocolError",
    "MplexSession",
    "MplexStream",
    "StreamEnded",
    "StreamKey",
    "StreamOpened",
    "StreamReset",
    "encode_frame",
]

_SHELL = {"MplexConnection", "MplexMuxer", "MplexStream"}


def __getattr__(name: str) -> Any:
    if name in _SHELL:
        from p2pkit_mplex import shell

        return getattr(shell, name)
    raise AttributeError(f"module 'p2pkit_mplex' has no attribute {name!r}")
