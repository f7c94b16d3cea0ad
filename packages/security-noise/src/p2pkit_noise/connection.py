"""The asyncio shell: a :class:`~p2pkit.abc.SecureConnection` over a raw connection.

After the handshake the raw connection is switched to push mode for good: every chunk
the socket delivers goes through :class:`~p2pkit_noise.framing.FrameDecoder` in the same
call chain.  What happens to the plaintext depends on *our* mode:

* pull mode (multistream-select right after the handshake): it is copied into a
  :class:`~p2pkit.io.ReadBuffer` for :meth:`NoiseConnection.read`; when more than
  ``PULL_HIGH_WATER`` bytes wait unread, the raw connection is paused (the peer cannot
  fill our memory while nobody reads);
* push mode (a muxer called :meth:`NoiseConnection.start_push`): the decrypted
  memoryview goes straight to the muxer's ``data_received`` -- no task, no queue, no
  copy.

Writes encrypt into one buffer per call (``write_many``: one for all its parts; large
ones pooled, see :class:`~p2pkit_noise.framing.FrameEncoder`) and hand it to the raw
connection's ``write_nowait`` in one piece (one socket write).  Flow control (``write_paused``,
``drain``) is the raw connection's.

Any transport error (failed authentication, impossible frame length, nonce exhaustion,
a stream cut inside a frame) aborts the raw connection and is reported as the typed
error to the reader or receiver; other connections are not affected.  In push mode the
plaintext of the good frames that preceded the bad one is delivered first; in pull mode
unread data is dropped (the connection is dead, and pull mode is only negotiation).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from p2pkit.abc import Buffer, RawConnection, Receiver, SecureConnection
from p2pkit.errors import ConnectionClosed, P2PError
from p2pkit.io import ReadBuffer
from p2pkit_noise._ids import PROTOCOL_ID
from p2pkit_noise.errors import NoiseTransportError
from p2pkit_noise.framing import FrameDecoder, FrameEncoder

if TYPE_CHECKING:
    from multiaddr import Multiaddr

    from p2pkit.peer import PeerId
    from p2pkit_noise.handshake import HandshakeResult

PULL_HIGH_WATER = 1 << 20
"""Unread plaintext (pull mode) above which we stop reading the socket."""
PULL_LOW_WATER = PULL_HIGH_WATER // 4

log = logging.getLogger("p2pkit.noise")


class _RawReceiver:
    """What the raw connection pushes into (kept apart from the public API)."""

    __slots__ = ("connection_lost", "data_received", "eof_received")

    def __init__(self, conn: NoiseConnection) -> None:
        self.data_received = conn._raw_data
        self.eof_received = conn._raw_eof
        self.connection_lost = conn._raw_lost


class NoiseConnection(SecureConnection):
    """An authenticated, encrypted channel (see the module docstring).

    Built by :class:`~p2pkit_noise.NoiseSecurity` once the handshake succeeded;
    ``leftover`` is what arrived after the last handshake message.
    """

    def __init__(
        self,
        raw: RawConnection,
        result: HandshakeResult,
        *,
        local_peer: PeerId,
        leftover: bytes = b"",
    ) -> None:
        self.raw = raw
        self.is_initiator = raw.is_initiator
        self.local_peer = local_peer
        self.remote_peer = result.remote_peer
        self.remote_public_key = result.remote_public_key
        self.remote_extensions = result.remote_extensions
        self.security_protocol = PROTOCOL_ID
        self.early_muxer = result.early_muxer
        self._encoder = FrameEncoder(result.send_key, result.send_nonce)
        self._decoder = FrameDecoder(result.recv_key, result.recv_nonce)
        self._rbuf = ReadBuffer(on_consume=self._consumed)
        self._receiver: Receiver | None = None
        self._error: BaseException | None = None
        self._eof = False
        self._lost = False
        self._lost_exc: BaseException | None = None
        self._lost_delivered = False
        self._user_paused = False
        self._buffer_paused = False
        if leftover:
            raw.unread(leftover)
        raw.start_push(_RawReceiver(self))

    # -- properties --------------------------------------------------------------------

    @property
    def local_addr(self) -> Multiaddr | None:
        return self.raw.local_addr

    @property
    def remote_addr(self) -> Multiaddr | None:
        return self.raw.remote_addr

    @property
    def closed(self) -> bool:
        return self._error is not None or self._lost or self.raw.closed

    @property
    def write_paused(self) -> bool:
        return self.raw.write_paused

    # -- pull mode ---------------------------------------------------------------------

    async def read(self, max_bytes: int = -1) -> bytes:
        if self._receiver is not None:
            raise RuntimeError("read() after start_push()")
        return await self._rbuf.read(max_bytes)

    def unread(self, data: bytes) -> None:
        if self._receiver is not None:
            raise RuntimeError("unread() after start_push()")
        self._rbuf.unread(data)

    # -- push mode ---------------------------------------------------------------------

    def start_push(self, receiver: Receiver) -> None:
        if self._receiver is not None:
            raise RuntimeError("start_push() called twice")
        self._receiver = receiver
        rbuf = self._rbuf
        if rbuf.exception is None:
            data = rbuf.read_nowait(-1)
            if data:
                receiver.data_received(memoryview(data))
            if self._eof:
                receiver.eof_received()
        if rbuf.exception is not None or self._lost:
            self._deliver_lost(self._error or self._lost_exc)
        if self._buffer_paused:
            self._buffer_paused = False
            self._update_reading()

    def pause_reading(self) -> None:
        self._user_paused = True
        self._update_reading()

    def resume_reading(self) -> None:
        self._user_paused = False
        self._update_reading()

    def _update_reading(self) -> None:
        if self._lost or self._error is not None:
            return
        if self._user_paused or self._buffer_paused:
            self.raw.pause_reading()
        else:
            self.raw.resume_reading()

    # -- send side ---------------------------------------------------------------------

    def write_nowait(self, data: Buffer) -> None:
        self.write_many((data,))

    def write_many(self, parts: Sequence[Buffer]) -> None:
        """All parts encrypted into one buffer: one write to the raw connection."""
        if self._error is not None:
            raise ConnectionClosed(f"noise connection failed: {self._error}") from self._error
        try:
            frames = self._encoder.seal(parts)
        except NoiseTransportError as exc:  # nonce exhaustion
            self._fail(exc)
            raise
        if frames:  # nothing to send for empty data: no empty frame
            self.raw.write_nowait(frames)

    async def write(self, data: Buffer) -> None:
        self.write_nowait(data)
        if self.raw.write_paused:
            await self.raw.drain()

    async def drain(self) -> None:
        if self._error is not None:
            raise ConnectionClosed(f"noise connection failed: {self._error}") from self._error
        await self.raw.drain()

    async def close_write(self) -> None:
        """Half-close: Noise has no close message, so this is the TCP half-close."""
        await self.raw.close_write()

    async def close(self) -> None:
        await self.raw.close()

    def reset(self) -> None:
        self.raw.reset()

    # -- from the raw connection ---------------------------------------------------------

    def _raw_data(self, data: memoryview) -> None:
        if self._error is not None:
            return
        try:
            plain = self._decoder.feed(data)
        except NoiseTransportError as exc:
            self._fail(exc)
            return
        if plain:
            receiver = self._receiver
            if receiver is not None:
                receiver.data_received(plain)
            else:
                self._rbuf.feed(bytes(plain))
                if self._rbuf.size > PULL_HIGH_WATER and not self._buffer_paused:
                    self._buffer_paused = True
                    self._update_reading()
        if self._decoder.error is not None:
            # Good frames came before a bad one: they were delivered above.
            self._fail(self._decoder.error)

    def _raw_eof(self) -> None:
        if self._error is not None:
            return
        try:
            self._decoder.feed_eof()
        except NoiseTransportError as exc:
            self._fail(exc)
            return
        self._eof = True
        if self._receiver is not None:
            self._receiver.eof_received()
        else:
            self._rbuf.feed_eof()

    def _raw_lost(self, exc: BaseException | None) -> None:
        if self._lost:
            return
        self._lost = True
        if exc is not None and not isinstance(exc, P2PError):
            wrapped = ConnectionClosed(f"connection lost: {exc}")
            wrapped.__cause__ = exc
            exc = wrapped
        self._lost_exc = exc
        if self._receiver is not None:
            self._deliver_lost(self._error or exc)
        elif self._error is None:
            if exc is None:
                self._rbuf.feed_eof()
            else:
                self._rbuf.fail(exc)

    def _consumed(self, _n: int) -> None:
        if self._buffer_paused and self._rbuf.size <= PULL_LOW_WATER:
            self._buffer_paused = False
            self._update_reading()

    # -- failure -------------------------------------------------------------------------

    def _fail(self, exc: BaseException) -> None:
        """A transport error: abort the raw connection, report ``exc`` to our reader."""
        if self._error is not None:
            return
        self._error = exc
        log.warning("noise: closing connection to %s: %s", self.remote_peer, exc)
        self.raw.reset()
        if self._receiver is not None:
            self._deliver_lost(exc)
        else:
            self._rbuf.fail(exc)

    def _deliver_lost(self, exc: BaseException | None) -> None:
        if self._lost_delivered or self._receiver is None:
            return
        self._lost_delivered = True
        self._receiver.connection_lost(exc)
