"""Yamux keepalive: ping a quiet peer; end the session when it stays silent.

A base class of :class:`~p2pkit_yamux.shell.YamuxConnection`, kept apart so that each
module has one job: the shell drives the session (streams, the channel, close), this is
the keepalive timer and its rules, which are go-yamux's:

* **Ping only a quiet peer**: a ping goes out after ``keepalive_interval`` without a
  byte from the peer (``_received_at``, which ``data_received`` sets for every read), so
  a busy session sends none.  The ping's value is random (32 bits,
  :meth:`~p2pkit_yamux.session.YamuxSession.ping`): a peer that does not read cannot
  answer it blindly.
* **Pong**: the answer to our ping (:meth:`YamuxKeepalive._pong_received`) re-arms the
  timer for the next quiet interval.
* **Frames after our ping count as alive**: with no pong within ``keepalive_timeout``,
  the session is aborted only if nothing at all came from the peer since the ping; if
  something did, its pong is merely queued behind what it sent before (a slow link), and
  the timer is re-armed instead.

The timer lives in the event loop's shared timer wheel (:mod:`p2pkit.timerwheel`: one
loop handle per slot, not one per session; a timer fires up to 1/8 of its delay late).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from p2pkit.errors import ConnectionClosed
from p2pkit.logs import get_logger

if TYPE_CHECKING:
    import asyncio

    from p2pkit.abc import Buffer
    from p2pkit.timerwheel import TimerWheel, WheelTimer
    from p2pkit_yamux.options import YamuxOptions
    from p2pkit_yamux.session import YamuxSession

log = get_logger("yamux")  # p2pkit.yamux (p2pkit.logs), the shell's logger


class YamuxKeepalive:
    """See the module docstring (the connection's constructor calls
    :meth:`_init_keepalive` before it receives anything, and
    :meth:`_schedule_keepalive` to start the timer)."""

    options: YamuxOptions
    _loop: asyncio.AbstractEventLoop
    _session: YamuxSession
    _wheel: TimerWheel
    _ended: BaseException | None
    """Why the session ended (None while it is open): no keepalive after it."""
    _received_at: float
    """Loop time of the last bytes from the peer (set by ``data_received``)."""
    _keepalive_value: int | None
    """The value of our ping awaiting its pong, if any."""
    _ping_sent_at: float
    _keepalive_timer: WheelTimer | None

    if TYPE_CHECKING:  # the connection's

        def _send(self, data: Buffer) -> None: ...
        def abort(self, exc: BaseException | None = None) -> None: ...

    def _init_keepalive(self) -> None:
        self._keepalive_value = None
        self._received_at = self._loop.time()
        self._ping_sent_at = 0.0
        self._keepalive_timer = None

    def _keepalive(self) -> None:
        """Ping after ``keepalive_interval`` without a byte from the peer (as go-yamux
        does: anything received extends the interval, so a busy session sends none)."""
        self._keepalive_timer = None
        if self._ended is not None:
            return
        now = self._loop.time()
        quiet = now - self._received_at
        if quiet < self.options.keepalive_interval:
            self._keepalive_timer = self._wheel.call_later(
                self.options.keepalive_interval - quiet, self._keepalive
            )
            return
        value, frame = self._session.ping(now)
        self._keepalive_value = value
        self._ping_sent_at = now
        self._send(frame)
        self._keepalive_timer = self._wheel.call_later(
            self.options.keepalive_timeout, self._keepalive_expired
        )

    def _keepalive_expired(self) -> None:
        self._keepalive_timer = None
        if self._ended is not None or self._keepalive_value is None:
            return
        if self._received_at > self._ping_sent_at:
            # The peer is alive; its pong is only late (queued behind what we sent
            # before our ping, on a slow link): no reason to cut the connection.
            self._keepalive_value = None
            self._schedule_keepalive()
            return
        log.debug("yamux keepalive: no pong within %ss", self.options.keepalive_timeout)
        self.abort(ConnectionClosed("yamux keepalive timed out"))

    def _pong_received(self, value: int) -> None:
        """A ping ACK: the answer to our keepalive ping re-arms the timer (other pongs,
        such as the answer to ``ping_on_start``, are not ours to count)."""
        if value == self._keepalive_value:
            self._keepalive_value = None
            self._schedule_keepalive()

    def _schedule_keepalive(self) -> None:
        if self._keepalive_timer is not None:
            self._keepalive_timer.cancel()
            self._keepalive_timer = None
        if self._ended is None and self.options.keepalive_interval > 0:
            self._keepalive_timer = self._wheel.call_later(
                self.options.keepalive_interval, self._keepalive
            )

    def _stop_keepalive(self) -> None:
        """The session ended: no timer is left behind in the wheel."""
        if self._keepalive_timer is not None:
            self._keepalive_timer.cancel()
            self._keepalive_timer = None
