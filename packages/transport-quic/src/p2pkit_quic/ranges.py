"""aioquic's ``RangeSet`` with a logarithmic ``add``, and a bound on what a peer can grow.

aioquic records the byte ranges a stream (or a CRYPTO stream) has received in a
``RangeSet``: a sorted list of ranges whose ``add`` scans it from the start.  A peer
that sends one-byte STREAM frames at every other offset makes that list grow by one
range per frame and each frame cost a scan of all of them: 16,000 such frames (80 KB
on the wire) took 11 s of CPU, and a 4 MiB stream window allows two million.  The same
holds for CRYPTO frames before the handshake (aioquic buffers up to 512 KiB of them),
from a peer nobody has authenticated yet.

:class:`FastRanges` finds its place by bisection (O(log n) comparisons, then one list
insert or slice, which is a memmove); :class:`ReceivedRanges` also refuses more than
``max_gaps`` ranges, closing the connection (INTERNAL_ERROR, "too many gaps"), as
quic-go does past 1000 gaps in a stream's received data; a connection's streams hold
at most :data:`MAX_CONNECTION_GAPS` in all (:class:`GapBudget`).  The session's machine
(:mod:`p2pkit_quic.machine`) puts them in every stream aioquic creates: received
ranges of STREAM and CRYPTO frames, and the sender's acknowledged and pending ranges
(bounded by our own send buffer, but fed by the peer's acknowledgements).

:class:`PacketNumberWindow` answers as aioquic's ``QuicPacketNumberWindow`` (which
packet numbers of a packet space were received, for dropping duplicates) from ranges
instead of a set of numbers: aioquic's set holds the last 128 to 256 numbers received,
so a connection that has been up for a while (keep-alive PINGs and their ACKs) held
~8 KB of set table and ~7 KB of int objects in it, idle.  Packets mostly arrive in
order, so the ranges are one or two; the window bounds them (at most 64).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable
from typing import TYPE_CHECKING

from aioquic.quic.connection import QuicConnectionError
from aioquic.quic.packet import QuicErrorCode
from aioquic.quic.rangeset import RangeSet
from aioquic.quic.recovery import MAX_ACK_RANGES

if TYPE_CHECKING:
    from aioquic.quic.stream import QuicStream

MAX_STREAM_GAPS = 1000
"""Separate ranges a stream's received data may have (quic-go's limit)."""
MAX_CRYPTO_GAPS = 100
"""Separate ranges a CRYPTO stream's data may have (a handshake is a few kilobytes)."""
MAX_CONNECTION_GAPS = 4096
"""Separate ranges all of a connection's streams may have at once (about 230 KB)."""


def _start(r: range) -> int:
    return r.start


def _stop(r: range) -> int:
    return r.stop


class FastRanges(RangeSet):
    """``RangeSet`` whose ``add`` bisects; the same ranges as aioquic's, always."""

    def add(self, start: int, stop: int | None = None) -> None:
        if stop is None:
            stop = start + 1
        assert stop > start
        ranges: list[range] = self._RangeSet__ranges  # type: ignore[attr-defined]
        if not ranges:  # the common case: in-order data, acknowledged as it goes
            ranges.append(range(start, stop))
            return
        # The first range that ends at or after ``start`` (touching ranges merge).
        i = bisect_left(ranges, start, key=_stop)
        if i == len(ranges) or stop < ranges[i].start:
            self._insert(ranges, i, range(start, stop))
            return
        # Merge with ranges[i] and every later one starting at or before ``stop``.
        j = bisect_right(ranges, stop, key=_start) - 1
        ranges[i : j + 1] = [range(min(start, ranges[i].start), max(stop, ranges[j].stop))]

    def _insert(self, ranges: list[range], i: int, new: range) -> None:
        ranges.insert(i, new)


class GapBudget:
    """The gaps all of a connection's streams may hold at once (:data:`MAX_CONNECTION_GAPS`),
    so that many streams each below their own bound do not add up (256 streams at 1000
    gaps: 14 MB of range objects).  ``used`` is an upper bound (grown by every new range,
    never by merges); only when it passes the limit are the streams' ranges counted
    (``count_all``, O(streams)), so a connection far from the limit never counts."""

    __slots__ = ("_count_all", "limit", "used")

    def __init__(self, limit: int, count_all: Callable[[], int]) -> None:
        self.limit = limit
        self.used = 0
        self._count_all = count_all

    def take(self) -> bool:
        """One more range; False if the connection holds ``limit`` already."""
        self.used += 1
        if self.used <= self.limit:
            return True
        self.used = self._count_all() + 1
        return self.used <= self.limit


class ReceivedRanges(FastRanges):
    """:class:`FastRanges` of received data: a new range beyond ``max_gaps`` (or beyond
    the connection's ``budget``) closes the connection (the frame handler's
    ``QuicConnectionError``)."""

    def __init__(self, max_gaps: int, frame_type: int, budget: GapBudget) -> None:
        super().__init__()
        self.max_gaps = max_gaps
        self.frame_type = frame_type
        self.budget = budget

    def _insert(self, ranges: list[range], i: int, new: range) -> None:
        if len(ranges) >= self.max_gaps or not self.budget.take():
            raise QuicConnectionError(
                error_code=QuicErrorCode.INTERNAL_ERROR,
                frame_type=self.frame_type,
                reason_phrase=f"too many gaps in received data (> {self.max_gaps} in a "
                f"stream or {self.budget.limit} in all)",
            )
        ranges.insert(i, new)


def harden(stream: QuicStream, max_gaps: int, frame_type: int, budget: GapBudget) -> None:
    """Put the ranges above into a stream aioquic created (once; what it recorded is
    kept)."""
    receiver, sender = stream.receiver, stream.sender
    if type(receiver._ranges) is ReceivedRanges:
        return
    received = ReceivedRanges(max_gaps, frame_type, budget)
    for r in receiver._ranges:
        received.add(r.start, r.stop)
    receiver._ranges = received
    sender._acked = FastRanges(sender._acked)
    sender._pending = FastRanges(sender._pending)


class PacketNumberWindow:
    """aioquic's ``QuicPacketNumberWindow`` (same ``add`` and ``in`` answers) kept as
    ranges.  Numbers below the window (``_lower``) count as received, as in aioquic
    (duplicate detection forgets them); the window's ``size`` is aioquic's too."""

    __slots__ = ("_lower", "_ranges", "_size")

    def __init__(self) -> None:
        self._lower = 0
        self._ranges: list[range] = []  # received numbers >= _lower: sorted, disjoint
        self._size = 2 * MAX_ACK_RANGES

    def add(self, packet_number: int) -> None:
        if packet_number < self._lower:
            return
        ranges = self._ranges
        if ranges and ranges[-1].stop == packet_number:  # the next one, in order
            ranges[-1] = range(ranges[-1].start, packet_number + 1)
        else:
            i = bisect_right(ranges, packet_number, key=_start)  # ranges starting at or before
            before = ranges[i - 1] if i else None
            if before is None or packet_number >= before.stop:  # (else: already received)
                joins_before = before is not None and before.stop == packet_number
                joins_after = i < len(ranges) and ranges[i].start == packet_number + 1
                if joins_before and joins_after:
                    ranges[i - 1 : i + 1] = [range(ranges[i - 1].start, ranges[i].stop)]
                elif joins_before:
                    ranges[i - 1] = range(ranges[i - 1].start, packet_number + 1)
                elif joins_after:
                    ranges[i] = range(packet_number, ranges[i].stop)
                else:
                    ranges.insert(i, range(packet_number, packet_number + 1))
        lower = packet_number - self._size + 1
        if lower > self._lower:
            self._lower = lower
            below = bisect_right(ranges, lower, key=_stop)  # ranges ending at or below
            if below:
                del ranges[:below]

    def __contains__(self, packet_number: int) -> bool:
        if packet_number < self._lower:
            return True
        ranges = self._ranges
        i = bisect_right(ranges, packet_number, key=_start) - 1
        return i >= 0 and packet_number < ranges[i].stop
