"""The shared muxer compliance suite, run on yamux over memory channels and loopback TCP."""

from __future__ import annotations

import pytest

from p2pkit.abc import MuxedConnection
from p2pkit.testing.memory import channel_pair, tcp_channel_pair
from p2pkit.testing.muxer_suite import MuxerPairFactory, MuxerSuite
from p2pkit_yamux import YamuxMuxer, YamuxOptions

# Keepalive off: these tests never idle for 30 s, and a stray timer would outlive them.
OPTIONS = YamuxOptions(keepalive_interval=0, close_timeout=2.0)


def _sessions(a: object, b: object) -> tuple[MuxedConnection, MuxedConnection]:
    muxer = YamuxMuxer(OPTIONS)
    return (
        muxer.new_session(a, is_initiator=True),  # type: ignore[arg-type]
        muxer.new_session(b, is_initiator=False),  # type: ignore[arg-type]
    )


class TestYamuxOverMemory(MuxerSuite):
    @pytest.fixture
    def muxer_pair(self) -> MuxerPairFactory:
        async def make() -> tuple[MuxedConnection, MuxedConnection]:
            return _sessions(*channel_pair())

        return make


class TestYamuxOverTcp(MuxerSuite):
    @pytest.fixture
    def muxer_pair(self) -> MuxerPairFactory:
        async def make() -> tuple[MuxedConnection, MuxedConnection]:
            return _sessions(*await tcp_channel_pair())

        return make
