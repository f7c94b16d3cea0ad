"""``/tls/1.0.0`` as a :class:`~p2pkit.abc.SecurityProtocol`."""

from __future__ import annotations

import datetime
from collections.abc import Sequence

from p2pkit.abc import RawConnection, SecureConnection, SecurityProtocol
from p2pkit.crypto import PrivateKey
from p2pkit.peer import PeerId
from p2pkit_tls._ids import PROTOCOL_ID
from p2pkit_tls.connection import TlsConnection, run_handshake
from p2pkit_tls.context import TlsIdentity
from p2pkit_tls.handshake import TlsSession
from p2pkit_tls.options import TlsOptions

__all__ = ["PROTOCOL_ID", "TlsSecurity"]



class TlsSecurity(SecurityProtocol):
    """libp2p TLS 1.3 (mutual authentication, ALPN early muxer negotiation).

    One instance per host: it owns the host's certificate, generated on first use and
    shared by every connection.
    """

    protocol_id = PROTOCOL_ID

    def __init__(self, private_key: PrivateKey, options: TlsOptions | None = None) -> None:
        self.options = options or TlsOptions()
        self.private_key = private_key
        self.local_peer = PeerId.from_public_key(private_key.public_key)
        self.identity = TlsIdentity(
            private_key, lifetime=datetime.timedelta(seconds=self.options.certificate_lifetime)
        )

    async def secure_outbound(
        self, conn: RawConnection, remote_peer: PeerId | None, muxers: Sequence[str] = ()
    ) -> SecureConnection:
        session = TlsSession(
            self.identity, is_initiator=True, muxers=muxers, expected_peer=remote_peer
        )
        return await self._secure(conn, session)

    async def secure_inbound(
        self, conn: RawConnection, muxers: Sequence[str] = ()
    ) -> SecureConnection:
        session = TlsSession(self.identity, is_initiator=False, muxers=muxers)
        return await self._secure(conn, session)

    async def _secure(self, conn: RawConnection, session: TlsSession) -> TlsConnection:
        await run_handshake(conn, session, self.options.handshake_timeout)  # None: the caller's
        return TlsConnection(
            conn, session, local_peer=self.local_peer, security_protocol=self.protocol_id
        )
