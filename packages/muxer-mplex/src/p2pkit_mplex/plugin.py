"""Entry point ``p2pkit = mplex``: registers the mplex muxer (shell imported lazily)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from p2pkit.plugins import Components, PluginSpec, hookimpl
from p2pkit_mplex.frames import PROTOCOL_ID
from p2pkit_mplex.options import MplexOptions

if TYPE_CHECKING:
    from p2pkit_mplex.shell import MplexMuxer


def _factory(components: Components, options: MplexOptions) -> MplexMuxer:
    from p2pkit_mplex.shell import MplexMuxer

    return MplexMuxer(options)


@hookimpl
def p2pkit_stream_muxers() -> list[PluginSpec]:
    return [
        PluginSpec(
            kind="muxer",
            name="mplex",
            protocol_id=PROTOCOL_ID,
            factory=_factory,
            options=MplexOptions,
            description="mplex stream muxer (deprecated by libp2p; no flow control)",
        )
    ]
