"""The shared muxer compliance suite, run on mplex over memory channels and loopback TCP.

Slow readers: mplex has no flow control.  The receiver buffers up to
``max_stream_buffer`` unread bytes per stream; beyond that it stops reading the
connection and, if the reader has not caught up within ``slow_reader_timeout``, resets
the stream (see the package README).  The suite's
``test_slow_reader_does_not_stall_others`` leaves one stream unread while another
transfers, then expects the unread stream's data intact.  That holds for mplex only
while the unread data stays within the bound (above it the other stream would be held
up, and the unread one reset after the timeout: by design), so the suite runs with
``slow_reader_bytes`` equal to ``max_stream_buffer`` (exactly at the bound).  Above the
bound the behaviour is tested in ``test_shell.py``
(``test_slow_reader_pauses_then_reset_after_timeout``,
``test_slow_reader_is_reset_other_streams_unaffected``).
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
