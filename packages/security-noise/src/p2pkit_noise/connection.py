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

from p2pkit.abc import Buffer, RawConnection, SecureConnection
from p2pkit.channel import LayeredChannel
from p2pkit.logs import RepeatLimiter, get_logger, peer_extra, short_peer
from p2pkit_noise._ids import PROTOCOL_ID
from p2pkit_noise.errors import NoiseTransportError
from p2pkit_noise.framing import FrameDecoder, FrameEncoder

if TYPE_CHECKING:
    from p2pkit.peer import PeerId
    from p2pkit_noise.handshake import HandshakeResult

PULL_HIGH_WATER = 1 << 20
"""Unread plaintext (pull mode) above which we stop reading the socket."""

log = get_logger("noise")
#: Lines a peer can trigger again and again are collapsed (p2pkit.logs).
_repeats = RepeatLimiter()


class NoiseConnection(LayeredChannel, SecureConnection):
    """An authenticated, encrypted channel (see the module docstring).

    Built by :class:`~p2pkit_noise.NoiseSecurity` once the handshake succeeded;
    ``leftover`` is what arrived after the last handshake message.  The channel state
    machine is :class:`~p2pkit.channel.LayeredChannel`'s; this class only encrypts and
    decrypts.
    """

    def __init__(
        self,
        raw: RawConnection,
        result: HandshakeResult,
        *,
        local_peer: PeerId,
        leftover: bytes = b"",
    ) -> None:
        super().__init__(raw, pull_high_water=PULL_HIGH_WATER)
        self.local_peer = local_peer
        self.remote_peer = result.remote_peer
        self.remote_public_key = result.remote_public_key
        self.remote_extensions = result.remote_extensions
        self.security_protocol = PROTOCOL_ID
        self.early_muxer = result.early_muxer
        self._encoder = FrameEncoder(result.send_key, result.send_nonce)
        self._decoder = FrameDecoder(result.recv_key, result.recv_nonce)
        if leftover:
            raw.unread(leftover)
        self._start_below()

    # -- send side ---------------------------------------------------------------------

    def _raw_write(self, data: Buffer) -> None:
        self._raw_write_many((data,))

    def _raw_write_many(self, parts: Sequence[Buffer]) -> None:
        """All parts encrypted into one buffer: one write to the raw connection."""
        try:
            frames = self._encoder.seal(parts)
        except NoiseTransportError as exc:  # nonce exhaustion
            self._fail(exc)
            raise
        if frames:  # nothing to send for empty data: no empty frame
            self.raw.write_nowait(frames)

    # -- from the raw connection ---------------------------------------------------------

    def _below_data(self, data: memoryview) -> None:
        if self._failed is not None:
            return
        try:
            plain = self._decoder.feed(data)
        except NoiseTransportError as exc:
            self._fail(exc)
            return
        try:
            if plain:
                self._feed(plain)
        finally:
            self._decoder.release()  # the plaintext buffer goes back to the pool
        if self._decoder.error is not None:
            # Good frames came before a bad one: they were delivered above.
            self._fail(self._decoder.error)

    def _below_eof(self) -> None:
        if self._failed is not None:
            return
        try:
            self._decoder.feed_eof()
        except NoiseTransportError as exc:
            self._fail(exc)
            return
        self._feed_eof()

    def _fail(self, exc: BaseException) -> None:
        """A transport error: abort the raw connection, report ``exc`` to our reader."""
        if self._failed is None:
            _repeats.log(
                log,
                logging.WARNING,
                ("transport-error", type(exc).__name__),
                "noise: closing connection to %s: %s",
                short_peer(self.remote_peer),
                exc,
                extra=peer_extra(self.remote_peer),
            )
        super()._fail(exc)
