"""p2pkit_yamux: the yamux stream muxer (``/yamux/1.0.0``) for p2pkit.

Sans-IO core: :class:`YamuxSession` (+ events in :mod:`p2pkit_yamux.events`).
asyncio shell: :class:`YamuxMuxer` -> :class:`YamuxConnection` -> :class:`YamuxStream`.

Every public name is imported on first use (PEP 562 ``__getattr__``), so that
importing the package, or its entry-point module :mod:`p2pkit_yamux.plugin`, loads no
implementation module (no cipher, no OpenSSL, no asyncio shell).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from p2pkit.lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "PROTOCOL_ID": "p2pkit_yamux._ids",
    "YamuxControlFlood": "p2pkit_yamux.errors",
    "YamuxGoAway": "p2pkit_yamux.errors",
    "YamuxProtocolError": "p2pkit_yamux.errors",
    "YamuxOptions": "p2pkit_yamux.options",
    "YamuxSession": "p2pkit_yamux.session",
    "YamuxConnection": "p2pkit_yamux.shell",
    "YamuxMuxer": "p2pkit_yamux.shell",
    "YamuxStream": "p2pkit_yamux.stream",
}

__all__ = [
    "PROTOCOL_ID",
    "YamuxConnection",
    "YamuxControlFlood",
    "YamuxGoAway",
    "YamuxMuxer",
    "YamuxOptions",
    "YamuxProtocolError",
    "YamuxSession",
    "YamuxStream",
]

if TYPE_CHECKING:
    from p2pkit_yamux._ids import PROTOCOL_ID
    from p2pkit_yamux.errors import (
        YamuxGoAway,
        YamuxProtocolError,
    )
    from p2pkit_yamux.options import YamuxOptions
    from p2pkit_yamux.session import YamuxSession
    from p2pkit_yamux.shell import YamuxConnection, YamuxMuxer
    from p2pkit_yamux.stream import YamuxStream


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
