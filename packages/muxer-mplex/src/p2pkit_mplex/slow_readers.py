"""mplex slow readers: pause the connection for a reader that falls behind, then reset.

A base class of :class:`~p2pkit_mplex.shell.MplexConnection`, kept apart so that each
module has one job: the shell drives the session and its streams; this is how a
connection without flow control bounds what a slow reader makes it buffer, as go-mplex
does (the README's "Slow readers"):

* when a stream holds more than ``max_stream_buffer`` unread bytes (the session is
  ``congested``), the connection stops reading the channel (:meth:`MplexSlowReaders._pause`),
  so TCP slows the sender down;
* every read of a stream (its credit, :meth:`MplexSlowReaders._consumed`) may bring it
  back under the bound: reading resumes as soon as no stream is congested
  (:meth:`MplexSlowReaders._maybe_resume`; so does a stream that goes away);
* a reader that has not caught up within ``slow_reader_timeout`` has its stream reset
  (:meth:`MplexSlowReaders._slow_reader_expired`), and reading resumes for the others.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from p2pkit.abc import SecureConnection
    from p2pkit_mplex.events import Event
    from p2pkit_mplex.frames import StreamKey
    from p2pkit_mplex.options import MplexOptions
    from p2pkit_mplex.session import MplexSession


class MplexSlowReaders:
    """See the module docstring (the connection's constructor calls
    :meth:`_init_slow_readers`)."""

    options: MplexOptions
    _channel: SecureConnection
    _session: MplexSession
    _ended: bool
    """The session is over (no pause, no reset, no resume of reading)."""

    if TYPE_CHECKING:  # the connection's

        def _handle(self, events: list[Event]) -> None: ...
        def _send_control(self, frame: bytes) -> None: ...

    def _init_slow_readers(self) -> None:
        self._paused = False  # reading paused for a slow reader
        self._slow_timer: asyncio.TimerHandle | None = None

    def _pause(self) -> None:
        """A stream is over max_stream_buffer: stop reading the connection for a while."""
        self._paused = True
        self._channel.pause_reading()
        self._slow_timer = asyncio.get_running_loop().call_later(
            self.options.slow_reader_timeout, self._slow_reader_expired
        )

    def _consumed(self, key: StreamKey, n: int) -> None:
        """A stream's reader consumed ``n`` bytes (its ``credit``): they no longer count
        as buffered, which may bring a paused connection under the bound again."""
        self._session.consumed(key, n)
        if self._paused:
            self._maybe_resume()

    def _maybe_resume(self) -> None:
        if self._paused and (self._ended or not self._session.congested):
            self._paused = False
            if self._slow_timer is not None:
                self._slow_timer.cancel()
                self._slow_timer = None
            if not self._ended:
                self._channel.resume_reading()

    def _slow_reader_expired(self) -> None:
        """The slow readers did not catch up in time: reset their streams, read on."""
        self._slow_timer = None
        if self._ended:
            return
        self._handle(self._session.reset_congested())
        out = self._session.data_to_send()
        if out:
            self._send_control(out)
        self._maybe_resume()
