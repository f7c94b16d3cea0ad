"""The shared muxer compliance suite, run on mplex over memory channels and loopback TCP.

Slow readers: mplex has no flow control, so the receiver buffers what the writer sends
and resets a stream whose unread data would exceed ``max_stream_buffer`` (see the
package README).  The suite's ``test_slow_reader_does_not_stall_others`` leaves one
stream unread while another transfers, then expects the unread stream's data intact:
that holds for mplex as long as the unread data stays within the bound, so the suite
runs with ``slow_reader_bytes`` equal to ``max_stream_buffer`` (exactly at the bound).
Above the bound mplex resets the stream by design; that behaviour is tested in
``test_shell.py::test_slow_reader_is_reset_other_streams_unaffected`` instead.
"""

from __future__ import annotations

from typing import cast

import pytest
from p2pkit.abc import MuxedConnection, RawConnection, SecureConnection
from p2pkit.testing.memory import channel_pair, tcp_channel_pair
from p2pkit.testing.muxer_suite import MuxerPairFactory, MuxerSuite
from p2pkit_mplex import MplexMuxer, MplexOptions

OPTIONS = MplexOptions()


def _sessions(a: RawConnection, b: RawConnection) -> tuple[MuxedConnection, MuxedConnection]:
    muxer = MplexMuxer(OPTIONS)
    return (
        muxer.new_session(cast(SecureConnection, a), is_initiator=True),
        muxer.new_session(cast(SecureConnection, b), is_initiator=False),
    )


class TestMplexOverMemory(MuxerSuite):
    slow_reader_bytes = OPTIONS.max_stream_buffer

    @pytest.fixture
    def muxer_pair(self) -> MuxerPairFactory:
        async def make() -> tuple[MuxedConnection, MuxedConnection]:
            return _sessions(*channel_pair())

        return make


class TestMplexOverTcp(MuxerSuite):
    slow_reader_bytes = OPTIONS.max_stream_buffer

    @pytest.fixture
    def muxer_pair(self) -> MuxerPairFactory:
        async def make() -> tuple[MuxedConnection, MuxedConnection]:
            return _sessions(*await tcp_channel_pair())

        return make
