"""Entry point module (group ``p2pkit``): offers the yamux muxer to the registry.

Kept import-light: the asyncio shell is imported only when the factory runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from p2pkit.plugins.spec import Components, PluginSpec, hookimpl
from p2pkit_yamux._ids import PROTOCOL_ID
from p2pkit_yamux.options import YamuxOptions, apply_memory_limit

if TYPE_CHECKING:
    from p2pkit.abc import StreamMuxer
    from p2pkit_yamux.shell import YamuxMuxer


def create(components: Components, options: YamuxOptions) -> YamuxMuxer:
    """Factory: one :class:`~p2pkit_yamux.YamuxMuxer` per host."""
    from p2pkit_yamux.shell import YamuxMuxer

    return YamuxMuxer(options)


@hookimpl
def p2pkit_stream_muxers() -> list[PluginSpec[StreamMuxer]]:
    return [
        PluginSpec(
            kind="muxer",
            name="yamux",
            protocol_id=PROTOCOL_ID,
            factory=create,
            options=YamuxOptions,
            priority=100,
            apply_memory_limit=apply_memory_limit,
            description="yamux 1.0.0 stream multiplexer (flow control, window auto-tuning)",
        )
    ]
