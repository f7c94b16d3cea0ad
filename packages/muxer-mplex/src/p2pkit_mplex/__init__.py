"""p2pkit_mplex: the mplex stream muxer (``/mplex/6.7.0``) for p2pkit.

Sans-IO core: :class:`MplexSession`; asyncio shell: :class:`MplexMuxer`.

Every public name is imported on first use (PEP 562 ``__getattr__``), so that
importing the package, or its entry-point module :mod:`p2pkit_mplex.plugin`, loads no
implementation module (no cipher, no OpenSSL, no asyncio shell).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from p2pkit.lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "PROTOCOL_ID": "p2pkit_mplex._ids",
    "MAX_MESSAGE_SIZE": "p2pkit_mplex.frames",
    "Flag": "p2pkit_mplex.frames",
    "StreamKey": "p2pkit_mplex.frames",
    "encode_frame": "p2pkit_mplex.frames",
    "MplexOptions": "p2pkit_mplex.options",
    "DataReceived": "p2pkit_mplex.events",
    "Event": "p2pkit_mplex.events",
    "StreamEnded": "p2pkit_mplex.events",
    "StreamOpened": "p2pkit_mplex.events",
    "StreamReset": "p2pkit_mplex.events",
    "MplexControlFlood": "p2pkit_mplex.errors",
    "MplexFrameTooLarge": "p2pkit_mplex.errors",
    "MplexProtocolError": "p2pkit_mplex.errors",
    "MplexSession": "p2pkit_mplex.session",
    "MplexConnection": "p2pkit_mplex.shell",
    "MplexMuxer": "p2pkit_mplex.shell",
    "MplexStream": "p2pkit_mplex.stream",
}

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

if TYPE_CHECKING:
    from p2pkit_mplex._ids import PROTOCOL_ID
    from p2pkit_mplex.errors import MplexControlFlood, MplexFrameTooLarge, MplexProtocolError
    from p2pkit_mplex.events import DataReceived, Event, StreamEnded, StreamOpened, StreamReset
    from p2pkit_mplex.frames import (
        MAX_MESSAGE_SIZE,
        Flag,
        StreamKey,
        encode_frame,
    )
    from p2pkit_mplex.options import MplexOptions
    from p2pkit_mplex.session import MplexSession
    from p2pkit_mplex.shell import MplexConnection, MplexMuxer
    from p2pkit_mplex.stream import MplexStream


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
