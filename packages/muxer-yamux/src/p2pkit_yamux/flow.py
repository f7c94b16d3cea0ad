"""Receive-window accounting and auto-tuning of one stream (pure arithmetic, no I/O).

The receiver grants credit; the sender may have at most ``window`` unacknowledged Data
bytes in flight.  We return credit only for bytes the *application* consumed (so a
slow reader throttles its own sender and nobody else), and only in batches of at
least half the current maximum (never one update per small read).

Auto-tuning (after rust-yamux, which follows QUIC): when half the credit was consumed
less than two RTTs after the previous update, the window is too small for the
bandwidth-delay product, so the maximum doubles (up to ``max_stream_window``).  The
session lends the extra bytes from a shared budget so the sum of all windows stays
bounded.  go-yamux's fixed "4 x RTT since the epoch" rule stalls at about twice the
initial window on real RTTs (go-yamux#136/#137), hence the rust rule.
"""

from __future__ import annotations


class WindowBudget:
    """Session-wide bound on the sum of all stream receive windows (base + growth).

    Base windows (256 KiB, the spec's promise) are always granted, even beyond the
    limit; growth is granted only within it, and the session refuses new inbound
    streams whose base window would not fit (:meth:`has_room`).
    """

    __slots__ = ("limit", "used")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    def has_room(self, n: int) -> bool:
        return self.used + n <= self.limit

    def reserve(self, n: int) -> None:
        """Account a window that cannot be refused (a stream's base)."""
        self.used += n

    def take(self, wanted: int) -> int:
        """Reserve up to ``wanted`` bytes of growth; returns what was granted."""
        granted = max(0, min(wanted, self.limit - self.used))
        self.used += granted
        return granted

    def give_back(self, n: int) -> None:
        self.used -= n


class ReceiveWindow:
    """Credit we granted to the peer on one stream.

    ``available``: bytes the peer may still send.  ``maximum``: the window we aim to
    keep open.  ``unreturned``: bytes the application consumed that we have not yet
    credited back.
    """

    __slots__ = (
        "available",
        "base",
        "budget",
        "last_update",
        "max_window",
        "maximum",
        "unreturned",
    )

    def __init__(self, base: int, max_window: int, budget: WindowBudget) -> None:
        budget.reserve(base)
        self.available = base
        self.maximum = base
        self.base = base
        self.max_window = max_window
        self.budget = budget
        self.unreturned = 0
        self.last_update: float | None = None

    def receive(self, n: int) -> bool:
        """Account ``n`` Data bytes from the peer; False if they exceed the granted credit."""
        if n > self.available:
            return False
        self.available -= n
        return True

    def consumed(self, n: int, now: float, rtt: float | None) -> int:
        """The application consumed ``n`` bytes; returns the window delta to send (or 0)."""
        self.unreturned += n
        if self.unreturned < self.maximum >> 1:
            return 0
        last = self.last_update
        if (
            rtt is not None
            and last is not None
            and now - last < 2.0 * rtt
            and self.maximum < self.max_window
        ):
            extra = self.budget.take(min(self.maximum, self.max_window - self.maximum))
            self.maximum += extra
            self.unreturned += extra
        self.last_update = now
        delta = self.unreturned
        self.unreturned = 0
        self.available += delta
        return delta

    def grow_base(self, extra: int) -> None:
        """Raise the window beyond the spec's 256 KiB (initial_window option)."""
        self.budget.reserve(extra)
        self.available += extra
        self.maximum += extra
        self.base += extra

    def release(self) -> None:
        """The stream is gone: give its whole window back to the session budget."""
        self.budget.give_back(self.maximum)
        self.maximum = 0
