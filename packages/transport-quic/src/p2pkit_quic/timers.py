"""The session's one timer: aioquic's deadlines, keep-alive PINGs, housekeeping.

A base class of :class:`~p2pkit_quic.session.QuicSession`, kept apart so that each
module has one job.  One ``call_at`` handle per connection, moved only when the
deadline changes; it fires for aioquic's own timers (ACK delay, loss detection, idle)
and for a keep-alive PING before the idle timeout would end a quiet connection, and
after each firing shrinks what activity grew (:meth:`SessionTimer._housekeeping`); it
also fires :data:`TIDY_DELAY` after the connection's last open stream ended, so that
happens then rather than at the next keep-alive.
"""

from __future__ import annotations

import asyncio

from p2pkit_quic.flow import StreamFlow
from p2pkit_quic.lean import compacted

TIDY_DELAY = 1.0
"""Seconds from the end of a connection's last open stream to its housekeeping (by then
aioquic has had the acknowledgements and dropped its streams)."""


class SessionTimer(StreamFlow):
    """See the module docstring (a link of the session's one chain of slotted classes:
    StreamFlow, this, QuicSession)."""

    __slots__ = ("_last_activity", "_tidy_at", "_timer", "_timer_at")

    handshake: asyncio.Future[None]
    _loop: asyncio.AbstractEventLoop
    _last_activity: float
    _tidy_at: float | None
    """When the housekeeping :meth:`tidy_soon` asked for is due (None: not asked)."""
    _timer: asyncio.TimerHandle | None
    _timer_at: float | None

    def _process_events(self) -> None:
        raise NotImplementedError

    def _check_ended(self) -> None:
        raise NotImplementedError

    def _transmit(self) -> None:
        raise NotImplementedError

    def _keep_alive_at(self) -> float | None:
        """When a keep-alive PING is due: ``keep_alive`` after the last packet heard, and
        within half the negotiated idle timeout (js-libp2p offers only 10 s).  The timer
        must wake for it: aioquic's own timer of an idle connection is its idle deadline."""
        if not self.options.keep_alive or not self.handshake.done():
            return None
        interval = min(self.options.keep_alive, self.quic._idle_timeout() / 2)
        return self._last_activity + interval

    def _set_timer(self) -> None:
        at = None if self._closed else self.quic.get_timer()
        keep_alive = None if at is None else self._keep_alive_at()
        if at is not None and keep_alive is not None and keep_alive < at:
            # aioquic's own timer would next fire at the idle timeout, which ends the
            # connection: wake up for the keep-alive PING before that.
            at = keep_alive
        tidy = self._tidy_at
        if at is not None and tidy is not None and tidy < at:
            at = tidy
        if at == self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_at = at
        if at is not None:
            self._timer = self._loop.call_at(at, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        if self._closed:
            return
        now = self._loop.time()
        if self._tidy_at is not None and now >= self._tidy_at:
            self._tidy_at = None
        keep_alive = self._keep_alive_at()
        if keep_alive is not None and now >= keep_alive:
            self.quic.send_ping(0)  # answered with an ACK: the peer's idle timer restarts
            self._last_activity = now
        self.quic.handle_timer(now)  # does nothing before aioquic's own deadlines
        self._process_events()
        self._check_ended()
        self._transmit()
        self._housekeeping()

    def tidy_soon(self) -> None:
        """The last open stream ended: housekeeping in :data:`TIDY_DELAY` seconds (one
        timer move per quiet spell; not again while one is pending)."""
        if self._tidy_at is None and not self._closed:
            self._tidy_at = self._loop.time() + TIDY_DELAY
            self._set_timer()

    def _housekeeping(self) -> None:
        """What grew during activity shrinks once it is nearly empty again, at the pace of
        the timer (ACK and loss timers, :meth:`tidy_soon`'s; an idle connection's fire
        after each keep-alive PING, its own or the peer's).  Dicts keep the table they grew
        to (200 streams: 9 KB for each stream table: aioquic's and ours), ``_sending``
        its ids until counted (O(ids): only when no stream data was written since the
        last time, or no stream is open; 100 ids: 8 KB)."""
        self.quic.compact()
        self._streams = compacted(self._streams)
        if self._sending is not None and (not self._wrote or not self._streams):
            self.count_unsent()  # forgets the streams whose bytes are all acknowledged
        self._wrote = False
