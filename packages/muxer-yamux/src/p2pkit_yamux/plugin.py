"""Entry point module (group ``p2pkit``): offers the yamux muxer to the registry.

Kept import-light: the asyncio shell is imported only when the factory runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from p2pkit.plugins.spec import Components, PluginSpec, hookimpl
from p2pkit_yamux.options import YamuxOptions

if TYPE_CHECKING:
    from p2pkit_yamux.shell import YamuxMuxer

PROTOCOL_ID = "/yamux/1.0.0"


def _factory(components: Components, options: YamuxOptions | None) -> YamuxMuxer:
    from p2pkit_yamux.shell import YamuxMuxer

    return YamuxMuxer(options or YamuxOptions())


@hookimpl
def p2pkit_stream_muxers() -> list[PluginSpec]:
    return [
        PluginSpec(
            kind="muxer",
            name="yamux",
            protocol_id=PROTOCOL_ID,
            factory=_factory,
            options=YamuxOptions,
            description="yamux 1.0.0 stream multiplexer (flow control, window auto-tuning)",
        )
    ]
