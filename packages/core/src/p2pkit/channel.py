"""The one implementation of the :class:`~p2pkit.abc.Channel` state machine.

Every connection-level byte pipe (a socket, an in-process pair, a security layer) has
the same states: pull mode (``read``/``unread`` from a :class:`~p2pkit.io.ReadBuffer`)
until a muxer calls ``start_push``, push mode afterwards (bytes go to the
:class:`~p2pkit.abc.Receiver` in the call chain that produced them), a reading switch
driven by the user (``pause_reading``) and by a full pull buffer, a write gate, and the
end states: peer EOF, loss of the connection, a fatal error of the layer itself, our own
half-close, close and reset.  :class:`ChannelBase` owns all of it.

A subclass supplies only the raw side:

* hooks it implements: ``_raw_write(data)`` (and ``_raw_write_many(parts)`` when it
  can do better than one call per part), ``_raw_close_write()``, ``_raw_close()``,
  ``_raw_abort()``, ``_set_reading(on)``; it sets ``_local`` / ``_remote`` (the
  addresses reported) when it knows them;
* calls it makes when something happens below: ``_feed(data)``, ``_feed_eof()``,
  ``_feed_lost(exc)``, ``_fail(exc)`` (a fatal error of its own, such as a failed
  decryption), ``_pause_writing()`` / ``_resume_writing()``.

:class:`LayeredChannel` is the base of security layers: it runs over another channel
(kept in push mode), takes its flow control and addresses from it, and routes what the
lower channel pushes through ``_below_data`` / ``_below_eof`` / ``_below_lost``, which a
layer overrides to transform the bytes (decrypt) before calling ``_feed``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

from p2pkit.abc import Buffer, Channel, Receiver
from p2pkit.errors import ConnectionClosed, StreamClosed
from p2pkit.io import ReadBuffer, WriteGate

if TYPE_CHECKING:
    from multiaddr import Multiaddr

__all__ = ["ChannelBase", "LayeredChannel"]

PULL_HIGH_WATER = 1 << 20
"""Default: unread bytes (pull mode) above which reading from below stops."""


class ChannelBase(Channel):
    """The Channel state machine; subclasses supply the raw hooks (module docstring)."""

    _copy_writes: ClassVar[bool] = False
    """True when ``_raw_write`` keeps a reference to ``data`` (asyncio transports do):
    ``write()`` then hands it an immutable copy, since its caller may reuse the buffer."""

    def __init__(self, *, is_initiator: bool, pull_high_water: int = PULL_HIGH_WATER) -> None:
        self.is_initiator = is_initiator
        self._pull_high_water = pull_high_water
        self._rbuf = ReadBuffer(on_consume=self._consumed)
        self._receiver: Receiver | None = None
        self._user_paused = False
        self._pull_paused = False
        self._gate = WriteGate()
        self._eof = False  # the peer's EOF arrived
        self._gone = False  # the layer below reported the connection lost
        self._gone_exc: ConnectionClosed | None = None
        self._failed: BaseException | None = None  # our own fatal error, or a local reset
        self._lost_delivered = False
        self._write_closed = False
        self._closed = False
        self._no_write = False  # any of: write-closed, closed, lost, failed (one hot check)
        self._close_done: asyncio.Future[None] | None = None
        self._local: Multiaddr | None = None  # what local_addr/remote_addr report;
        self._remote: Multiaddr | None = None  # a subclass sets them when it knows them

    # -- hooks for subclasses ----------------------------------------------------------

    def _raw_write(self, data: Buffer) -> None:
        raise NotImplementedError

    def _raw_write_many(self, parts: Sequence[Buffer]) -> None:
        for part in parts:
            self._raw_write(part)

    async def _raw_close_write(self) -> None:
        """Send our EOF after the queued data (the base has already refused new writes)."""

    async def _raw_close(self) -> None:
        """Graceful close of what is below; return when it is done (or abort)."""

    def _raw_abort(self) -> None:
        """Tear down what is below now (the peer sees an error if possible)."""

    def _set_reading(self, on: bool) -> None:
        """Start (True) or stop (False) taking bytes from below; must be idempotent."""

    # -- state ---------------------------------------------------------------------------

    @property
    def local_addr(self) -> Multiaddr | None:
        return self._local

    @property
    def remote_addr(self) -> Multiaddr | None:
        return self._remote

    @property
    def closed(self) -> bool:
        return self._closed or self._gone or self._failed is not None

    @property
    def write_paused(self) -> bool:
        return self._gate.paused

    def _closed_error(self) -> ConnectionClosed:
        failed = self._failed
        if failed is not None:
            if isinstance(failed, ConnectionClosed):
                return failed
            err = ConnectionClosed(f"{type(self).__name__} failed: {failed}")
            err.__cause__ = failed
            return err
        return self._gone_exc or ConnectionClosed(f"{type(self).__name__} is closed")

    def _refuse_write(self) -> None:
        if self.closed:
            raise self._closed_error()
        raise StreamClosed("write after close_write()")

    # -- pull mode -----------------------------------------------------------------------

    async def read(self, max_bytes: int = -1) -> bytes:
        if self._receiver is not None:
            raise RuntimeError("read() after start_push()")
        data = await self._rbuf.read(max_bytes)
        if not data and max_bytes != 0 and self._gone_exc is not None and not self._eof:
            # The connection broke before the peer's EOF: bytes that arrived first were
            # readable (as from a kernel socket); the error comes after them.
            raise self._gone_exc
        return data

    def unread(self, data: bytes) -> None:
        if self._receiver is not None:
            raise RuntimeError("unread() after start_push()")
        self._rbuf.unread(data)

    def _consumed(self, _n: int) -> None:
        """A pull-mode read took bytes: resume reading once the buffer has drained."""
        if self._pull_paused and self._rbuf.size <= self._pull_high_water // 4:
            self._pull_paused = False
            self._apply_reading()

    # -- push mode -----------------------------------------------------------------------

    def start_push(self, receiver: Receiver) -> None:
        if self._receiver is not None:
            raise RuntimeError("start_push() called twice")
        self._receiver = receiver
        if self._rbuf.exception is None:
            data = self._rbuf.read_nowait(-1)
            if data:
                receiver.data_received(memoryview(data))
            if self._eof:
                receiver.eof_received()
        if self._pull_paused:
            self._pull_paused = False
            self._apply_reading()
        if self._gone or self._failed is not None:
            self._deliver_lost(self._failed if self._failed is not None else self._gone_exc)

    def pause_reading(self) -> None:
        self._user_paused = True
        self._apply_reading()

    def resume_reading(self) -> None:
        self._user_paused = False
        self._apply_reading()

    def _apply_reading(self) -> None:
        if not (self._gone or self._failed is not None):
            self._set_reading(not (self._user_paused or self._pull_paused))

    def _deliver_lost(self, exc: BaseException | None) -> None:
        receiver = self._receiver
        if receiver is not None and not self._lost_delivered:
            self._lost_delivered = True
            receiver.connection_lost(exc)

    # -- from below --------------------------------------------------------------------------

    def _feed(self, data: memoryview) -> None:
        """Bytes from below: to the receiver as they are (push), copied into the buffer (pull).

        ``data`` is only valid during the call.  Dropped after ``close()``: whoever
        closed wants no more bytes (a socket keeps being drained until it is closed).
        """
        if self._closed:
            return
        receiver = self._receiver
        if receiver is not None:
            receiver.data_received(data)
            return
        rbuf = self._rbuf
        rbuf.feed(bytes(data))
        if rbuf.size > self._pull_high_water and not self._pull_paused:
            # Nobody is reading: leave further bytes below (the peer's writes back up)
            # instead of growing this buffer.
            self._pull_paused = True
            self._apply_reading()

    def _feed_eof(self) -> None:
        if self._eof or self._failed is not None:
            return
        self._eof = True
        if self._closed:
            return
        if self._receiver is not None:
            self._receiver.eof_received()
        else:
            self._rbuf.feed_eof()

    def _feed_lost(self, exc: BaseException | None) -> None:
        """The connection below is gone (``exc`` None: it ended cleanly)."""
        if self._gone:
            return
        self._gone = True
        self._no_write = True
        err: ConnectionClosed | None = None
        if isinstance(exc, ConnectionClosed):
            err = exc
        elif exc is not None:
            err = ConnectionClosed(f"connection lost: {type(exc).__name__}: {exc}")
            err.__cause__ = exc
        self._gone_exc = err
        self._gate.close(err or self._closed_error())
        if self._receiver is not None:
            self._deliver_lost(err)  # no-op after _fail(): that reported its own error
        elif self._failed is None:
            self._rbuf.feed_eof()  # ``read`` raises ``err`` after the buffered bytes

    def _fail(self, exc: BaseException) -> None:
        """A fatal error of this layer: abort below, report ``exc`` to our reader."""
        if self._failed is not None:
            return
        self._failed = exc
        self._no_write = True
        self._rbuf.fail(exc)
        self._gate.close(self._closed_error())
        self._raw_abort()
        self._deliver_lost(exc)

    def _pause_writing(self) -> None:
        self._gate.pause()

    def _resume_writing(self) -> None:
        self._gate.resume()

    # -- send side ---------------------------------------------------------------------------

    def write_nowait(self, data: Buffer) -> None:
        if self._no_write:
            self._refuse_write()
        self._raw_write(data)

    def write_many(self, parts: Sequence[Buffer]) -> None:
        if self._no_write:
            self._refuse_write()
        self._raw_write_many(parts)

    async def write(self, data: Buffer) -> None:
        if self._copy_writes and type(data) is not bytes:
            data = bytes(data)
        self.write_nowait(data)
        if self.write_paused:
            await self.drain()

    async def drain(self) -> None:
        if self.closed:
            raise self._closed_error()
        await self._gate.wait()

    async def close_write(self) -> None:
        if self._write_closed or self.closed:
            return
        self._write_closed = True
        self._no_write = True
        await self._raw_close_write()

    async def close(self) -> None:
        """Graceful close; idempotent (a second call waits for the first to finish)."""
        done = self._close_done
        if done is not None:
            if not done.done():
                await asyncio.shield(done)
            return
        done = self._close_done = asyncio.get_running_loop().create_future()
        was_dead = self._gone or self._failed is not None
        self._closed = self._write_closed = self._no_write = True
        try:
            if not was_dead:
                await self._raw_close()
        finally:
            done.set_result(None)

    def reset(self) -> None:
        """Abort now: our reads and writes raise ConnectionClosed; never raises."""
        if self._gone or self._failed is not None:
            self._closed = True
            return
        self._closed = self._write_closed = True
        exc = ConnectionClosed(f"{type(self).__name__} was reset locally")
        self._failed = exc
        self._no_write = True
        self._rbuf.fail(exc)
        self._gate.close(exc)
        self._raw_abort()

    def __repr__(self) -> str:
        role = "dialer" if self.is_initiator else "listener"
        return f"<{type(self).__name__} {role} {self.local_addr} <-> {self.remote_addr}>"


class _Below:
    """What the lower channel pushes into (kept apart from the layer's public API)."""

    __slots__ = ("connection_lost", "data_received", "eof_received")

    def __init__(self, layer: LayeredChannel) -> None:
        self.data_received = layer._below_data
        self.eof_received = layer._below_eof
        self.connection_lost = layer._below_lost


class LayeredChannel(ChannelBase):
    """A channel over another one (security layers; see the module docstring).

    The subclass sets up its own state, then calls :meth:`_start_below`: from then on
    the lower channel is in push mode and everything it had buffered (including bytes
    handed back with ``unread``) arrives through ``_below_data``.
    """

    def __init__(self, raw: Channel, *, pull_high_water: int = PULL_HIGH_WATER) -> None:
        super().__init__(is_initiator=raw.is_initiator, pull_high_water=pull_high_water)
        self.raw = raw

    def _start_below(self) -> None:
        self.raw.start_push(_Below(self))

    @property
    def local_addr(self) -> Multiaddr | None:
        return self.raw.local_addr

    @property
    def remote_addr(self) -> Multiaddr | None:
        return self.raw.remote_addr

    @property
    def closed(self) -> bool:
        return self._closed or self._gone or self._failed is not None or self.raw.closed

    @property
    def write_paused(self) -> bool:
        return self.raw.write_paused

    async def drain(self) -> None:
        if self._closed or self._gone or self._failed is not None:
            raise self._closed_error()
        await self.raw.drain()

    # -- raw hooks: the lower channel -----------------------------------------------------

    def _raw_write(self, data: Buffer) -> None:
        self.raw.write_nowait(data)

    async def _raw_close_write(self) -> None:
        await self.raw.close_write()

    async def _raw_close(self) -> None:
        await self.raw.close()

    def _raw_abort(self) -> None:
        self.raw.reset()

    def _set_reading(self, on: bool) -> None:
        if on:
            self.raw.resume_reading()
        else:
            self.raw.pause_reading()

    # -- what the lower channel pushes (override to transform) ----------------------------

    def _below_data(self, data: memoryview) -> None:
        self._feed(data)

    def _below_eof(self) -> None:
        self._feed_eof()

    def _below_lost(self, exc: BaseException | None) -> None:
        self._feed_lost(exc)
