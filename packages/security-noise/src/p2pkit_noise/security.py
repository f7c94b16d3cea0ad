"""``/noise``: the :class:`~p2pkit.abc.SecurityProtocol` that runs the handshake.

Drives :class:`~p2pkit_noise.handshake.NoiseHandshake` over the raw connection in pull
mode (bounded by the upgrader's deadline, or by ``NoiseOptions.handshake_timeout`` when
set), then wraps the connection in a
:class:`~p2pkit_noise.connection.NoiseConnection`.  On any failure the raw connection is
reset before the (typed) error propagates: a failed handshake never leaves a socket
open.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from p2pkit.abc import RawConnection, SecurityProtocol
from p2pkit.crypto import PrivateKey
from p2pkit.errors import HandshakeError, HandshakeTimeout, P2PError, ResourceLimitExceeded
from p2pkit.logs import RepeatLimiter, get_logger
from p2pkit.peer import PeerId
from p2pkit_noise._ids import PROTOCOL_ID
from p2pkit_noise.connection import NoiseConnection
from p2pkit_noise.errors import HandshakeTruncated
from p2pkit_noise.handshake import (
    MAX_MESSAGE,
    NoiseHandshake,
    generate_static_key,
    static_public_key,
)
from p2pkit_noise.options import NoiseOptions
from p2pkit_noise.payload import SIGNATURE_PREFIX

log = get_logger("noise")


class NoiseSecurity(SecurityProtocol):
    """Noise XX security for one local identity.

    One X25519 static key per instance (the spec allows keeping it for the lifetime of
    the module, as js-libp2p does), signed once: the identity signature, slow for RSA,
    is not recomputed per connection.  Ephemeral keys are fresh per handshake.
    """

    protocol_id = PROTOCOL_ID

    def __init__(
        self,
        private_key: PrivateKey,
        options: NoiseOptions | None = None,
        *,
        peer_id: PeerId | None = None,
    ) -> None:
        self.private_key = private_key
        self.options = options or NoiseOptions()
        self.peer_id = peer_id or PeerId.from_public_key(private_key.public_key)
        self._static_key = generate_static_key()
        self._static_sig: bytes | None = None
        self._inbound = 0
        # Lines a peer can trigger again and again are collapsed (p2pkit.logs).
        self._repeats = RepeatLimiter()

    @property
    def inbound_handshakes(self) -> int:
        """Inbound handshakes in progress now."""
        return self._inbound

    async def secure_outbound(
        self, conn: RawConnection, remote_peer: PeerId | None, muxers: Sequence[str] = ()
    ) -> NoiseConnection:
        return await self._run(conn, is_initiator=True, remote_peer=remote_peer, muxers=muxers)

    async def secure_inbound(
        self, conn: RawConnection, muxers: Sequence[str] = ()
    ) -> NoiseConnection:
        limit = self.options.max_inbound_handshakes
        if limit is not None and self._inbound >= limit:
            self._repeats.log(
                log,
                logging.WARNING,
                "handshake-cap",
                "noise: refusing inbound connection from %s: %d handshakes already in progress",
                conn.remote_addr,
                self._inbound,
            )
            conn.reset()
            raise ResourceLimitExceeded(f"noise: {limit} inbound handshakes already in progress")
        self._inbound += 1
        try:
            return await self._run(conn, is_initiator=False, remote_peer=None, muxers=muxers)
        finally:
            self._inbound -= 1

    def _signature(self) -> bytes:
        if self._static_sig is None:
            public = static_public_key(self._static_key)
            self._static_sig = self.private_key.sign(SIGNATURE_PREFIX + public)
        return self._static_sig

    async def _run(
        self,
        conn: RawConnection,
        *,
        is_initiator: bool,
        remote_peer: PeerId | None,
        muxers: Sequence[str],
    ) -> NoiseConnection:
        hs = NoiseHandshake(
            is_initiator=is_initiator,
            identity=self.private_key,
            muxers=muxers if self.options.early_muxer_negotiation else None,
            expected_peer=remote_peer,
            static_key=self._static_key,
            identity_sig=self._signature(),
        )
        try:
            async with asyncio.timeout(self.options.handshake_timeout):
                await _exchange(conn, hs)
            return NoiseConnection(conn, hs.result, local_peer=self.peer_id, leftover=hs.leftover)
        except TimeoutError:
            conn.reset()
            limit = self.options.handshake_timeout
            within = f" in {limit} s" if limit is not None else ""
            raise HandshakeTimeout(f"noise handshake did not complete{within}") from None
        except HandshakeError as exc:
            self._repeats.log(
                log,
                logging.DEBUG,
                ("failed", type(exc).__name__),
                "noise handshake with %s failed: %s",
                conn.remote_addr,
                exc,
            )
            conn.reset()
            raise
        except (P2PError, OSError) as exc:
            conn.reset()
            raise HandshakeTruncated(
                f"connection failed during the noise handshake: {exc}"
            ) from exc
        except BaseException:
            conn.reset()
            raise


async def _exchange(conn: RawConnection, hs: NoiseHandshake) -> None:
    out = hs.data_to_send()
    if out:
        await conn.write(out)
    while not hs.done:
        data = await conn.read(MAX_MESSAGE + 2)
        if not data:
            raise HandshakeTruncated("peer closed the connection during the noise handshake")
        hs.receive_data(data)
        out = hs.data_to_send()
        if out:
            await conn.write(out)
