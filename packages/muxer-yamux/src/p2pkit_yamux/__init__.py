"""p2pkit_yamux: the yamux stream muxer (``/yamux/1.0.0``) for p2pkit.

Sans-IO core: :class:`YamuxSession` (+ events in :mod:`p2pkit_yamux.events`).
asyncio shell: :class:`YamuxMuxer` -> :class:`YamuxConnection` -> :class:`YamuxStream`.
The shell is imported lazily so that the sans-IO core stays importable without asyncio
machinery being set up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from p2pkit_yamux.errors import YamuxControlFlood, YamuxGoAway, YamuxProtocolError
from p2pkit_yamux.options import YamuxOptions
from p2pkit_yamux.plugin import PROTOCOL_ID
from p2pkit_yamux.session import YamuxSession

if TYPE_CHECKING:
    from p2pkit_yamux.shell import YamuxConnection, YamuxMuxer, YamuxStream

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

_SHELL = {"YamuxConnection", "YamuxMuxer", "YamuxStream"}


def __getattr__(name: str) -> Any:
    if name in _SHELL:
        from p2pkit_yamux import shell

        return getattr(shell, name)
    raise AttributeError(f"module 'p2pkit_yamux' has no attribute {name!r}")
