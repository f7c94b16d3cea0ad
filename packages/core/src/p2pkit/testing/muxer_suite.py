"""Compliance suite for stream muxers (:class:`~p2pkit.abc.MuxedConnection`).

A muxer plugin (ours or a third party's) runs it by subclassing :class:`MuxerSuite` in a
test module and providing one fixture, ``muxer_pair``: an async factory that returns a
connected ``(initiator, responder)`` pair of sessions built over any channel pair::

    from p2pkit.testing.memory import channel_pair
    from p2pkit.testing.muxer_suite import MuxerSuite

    class TestMyMuxerOverMemory(MuxerSuite):
        @pytest.fixture
        def muxer_pair(self):
            async def make():
                a, b = channel_pair()
                muxer = MyMuxer()
                return (muxer.new_session(a, is_initiator=True),
                        muxer.new_session(b, is_initiator=False))
            return make

Every scenario runs twice: once with the initiator opening the streams, once with the
responder opening them.  The suite aborts both sessions after each test (aborting resets
the channels, so the factory need not clean up).  Class attributes tune the sizes for
slow implementations (``large_transfer_size``, ``stress_matrix``, ``slow_reader_bytes``).
Everything is bounded in time: a hang fails the test, it never blocks CI.

This module is the public entry; the suite is split by theme into sibling modules
(re-exported here): :mod:`p2pkit.testing.muxer_base` (helpers, sizes, fixtures),
:mod:`p2pkit.testing.muxer_streams`, :mod:`p2pkit.testing.muxer_session` and
:mod:`p2pkit.testing.muxer_load` (the scenarios).
"""

from __future__ import annotations

from p2pkit.testing.muxer_base import STEP_TIMEOUT as STEP_TIMEOUT
from p2pkit.testing.muxer_base import MiB as MiB
from p2pkit.testing.muxer_base import MuxerPairFactory as MuxerPairFactory
from p2pkit.testing.muxer_base import Sessions as Sessions
from p2pkit.testing.muxer_base import connected_stream as connected_stream
from p2pkit.testing.muxer_base import echo as echo
from p2pkit.testing.muxer_base import read_all as read_all
from p2pkit.testing.muxer_load import LoadScenarios
from p2pkit.testing.muxer_session import PeerLossScenarios, SessionCloseScenarios
from p2pkit.testing.muxer_streams import StreamScenarios

__all__ = ["MuxerPairFactory", "MuxerSuite"]


class MuxerSuite(PeerLossScenarios, LoadScenarios, SessionCloseScenarios, StreamScenarios):
    """Base class of a muxer's compliance tests (see the module docstring).

    The bases are listed last-first because pytest collects a base class's tests
    before its subclass's: one stream's life first, then the session's end, load, and
    a vanishing peer last."""
