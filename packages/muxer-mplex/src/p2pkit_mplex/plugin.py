"""Entry point ``p2pkit = mplex``: registers the mplex muxer (shell imported lazily)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from p2pkit.plugins.spec import Components, PluginSpec, hookimpl
from p2pkit_mplex._ids import PROTOCOL_ID
from p2pkit_mplex.options import MplexOptions, apply_memory_limit

if TYPE_CHECKING:
    from p2pkit.abc import StreamMuxer
    from p2pkit_mplex.shell import MplexMuxer


def create(components: Components, options: MplexOptions) -> MplexMuxer:
    """Factory: one :class:`~p2pkit_mplex.MplexMuxer` per host."""
    from p2pkit_mplex.shell import MplexMuxer

    return MplexMuxer(options)


@hookimpl
def p2pkit_stream_muxers() -> list[PluginSpec[StreamMuxer]]:
    return [
        PluginSpec(
            kind="muxer",
            name="mplex",
            protocol_id=PROTOCOL_ID,
            factory=create,
            options=MplexOptions,
            priority=50,
            apply_memory_limit=apply_memory_limit,
            description="mplex stream muxer (deprecated by libp2p; no flow control)",
        )
    ]
