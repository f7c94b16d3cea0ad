"""The asyncio shell: a :class:`TlsSession` over a RawConnection, as a SecureConnection.

No task of its own.  The handshake reads the raw connection in pull mode; afterwards
the raw connection pushes ciphertext into us, we decrypt it in the same call chain and
hand each plaintext record up: into the read buffer in pull mode (negotiation), to the
receiver in push mode (muxer).  Writes are encrypted on
the spot and handed to the raw connection's ``write_nowait`` as one fresh ``bytes``
object per call (never reused, so CPython 3.12+'s zero-copy transports are safe).

Half-close: ``close_write`` sends a TLS close_notify alert and nothing else, like go's
``tls.Conn.CloseWrite``; the peer reads EOF and may keep writing to us (TLS 1.3 allows
it).  A TCP EOF without close_notify is also reported as EOF (muxers frame their own
data, so truncation cannot go unnoticed above us).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from p2pkit.abc import Buffer, RawConnection, SecureConnection
from p2pkit.channel import LayeredChannel
from p2pkit.crypto import PublicKey
from p2pkit.errors import HandshakeError, HandshakeTimeout
from p2pkit.peer import PeerId
from p2pkit_tls.handshake import TlsProtocolError, TlsSession

if TYPE_CHECKING:
    pass

__all__ = ["TlsConnection", "run_handshake"]


async def run_handshake(raw: RawConnection, session: TlsSession, timeout: float | None) -> None:
    """Drive ``session``'s handshake over ``raw`` (pull mode) within ``timeout`` seconds.

    On failure the raw connection is closed (after a best-effort TLS alert) and a typed
    :class:`~p2pkit.errors.HandshakeError` is raised.
    """
    try:
        await _handshake(raw, session, timeout)
    finally:
        if not session.handshake_complete:
            session.release()


async def _handshake(raw: RawConnection, session: TlsSession, timeout: float | None) -> None:
    try:
        async with asyncio.timeout(timeout):
            while not session.do_handshake():
                out = session.data_to_send()
                if out:
                    await raw.write(out)
                data = await raw.read()
                if not data:
                    raise HandshakeError("connection closed during the TLS handshake")
                session.receive_data(data)
            out = session.data_to_send()
            if out:
                await raw.write(out)
    except TimeoutError:
        raw.reset()
        raise HandshakeTimeout(f"TLS handshake did not complete in {timeout} s") from None
    except HandshakeError:
        await _abort(raw, session)
        raise
    except (ConnectionError, OSError) as exc:
        raw.reset()
        raise HandshakeError(f"connection lost during the TLS handshake: {exc!r}") from exc
    except Exception as exc:  # anything unforeseen still closes the connection, typed
        raw.reset()
        raise HandshakeError(f"TLS handshake failed: {exc!r}") from exc
    except BaseException:  # cancelled: the connection is mid-handshake, unusable
        raw.reset()
        raise


async def _abort(raw: RawConnection, session: TlsSession) -> None:
    """Send the alert OpenSSL prepared (tells the peer why), then close."""
    try:
        alert = session.data_to_send()
        if alert and not raw.closed:
            raw.write_nowait(alert)
        async with asyncio.timeout(1.0):
            await raw.close()
    except Exception:
        raw.reset()


class TlsConnection(LayeredChannel, SecureConnection):
    """A TLS 1.3 secured channel with an authenticated remote PeerId.

    The channel state machine is :class:`~p2pkit.channel.LayeredChannel`'s; this
    class feeds ciphertext to the :class:`TlsSession`, pumps decrypted records up and
    encrypts writes.
    """

    def __init__(
        self,
        raw: RawConnection,
        session: TlsSession,
        *,
        local_peer: PeerId,
        security_protocol: str,
    ) -> None:
        if session.remote_peer is None or session.remote_public_key is None:
            raise ValueError("handshake not complete")
        super().__init__(raw)
        self._session = session
        self.local_peer = local_peer
        self.remote_peer: PeerId = session.remote_peer
        self.remote_public_key: PublicKey = session.remote_public_key
        self.security_protocol = security_protocol
        self.early_muxer = session.early_muxer
        self._raw_eof = False
        self._reading = True
        self._pump_scheduled = False
        self._start_below()
        self._pump()  # records that came with the last handshake message

    # -- receive ---------------------------------------------------------------------------

    def _pump(self) -> None:
        """Decrypt every complete record held by the session and deliver it."""
        session = self._session
        while self._reading and not self._closed and self._failed is None:
            try:
                chunk = session.read()
            except TlsProtocolError as exc:
                self._fail(exc)
                return
            if chunk is None:
                if self._raw_eof:
                    self._feed_eof()  # TCP EOF without close_notify: EOF all the same
                return
            if not chunk:
                self._feed_eof()  # close_notify
                return
            self._feed(memoryview(chunk))

    def _set_reading(self, on: bool) -> None:
        self._reading = on
        super()._set_reading(on)
        # Records decrypted-but-undelivered may wait in the session: deliver them soon,
        # not re-entrantly inside the caller (which may be in the middle of its own work).
        if on and not self._pump_scheduled:
            self._pump_scheduled = True
            asyncio.get_running_loop().call_soon(self._scheduled_pump)

    def _scheduled_pump(self) -> None:
        self._pump_scheduled = False
        self._pump()

    def _below_data(self, data: memoryview) -> None:
        if self._failed is not None:
            return
        try:
            self._session.receive_data(data)
        except Exception as exc:  # pragma: no cover - memory BIO writes do not fail
            self._fail(TlsProtocolError(repr(exc)))
            return
        self._pump()

    def _below_eof(self) -> None:
        self._raw_eof = True
        self._pump()

    def _below_lost(self, exc: BaseException | None) -> None:
        if exc is None:
            self._below_eof()
        self._feed_lost(exc)

    # -- send -----------------------------------------------------------------------------

    def _raw_write(self, data: Buffer) -> None:
        ciphertext = self._session.encrypt(data)
        if ciphertext:
            self.raw.write_nowait(ciphertext)

    async def _raw_close_write(self) -> None:
        """A close_notify alert and nothing else (go's ``tls.Conn.CloseWrite``)."""
        if self._session.write_closed:
            return
        alert = self._session.close_write()
        if alert:
            self.raw.write_nowait(alert)
            await self.raw.drain()

    async def _raw_close(self) -> None:
        try:
            if not self.raw.closed and not self._session.write_closed:
                alert = self._session.close_write()
                if alert:
                    self.raw.write_nowait(alert)
        except Exception:  # closing must not fail because the peer went away
            pass
        try:
            await self.raw.close()
        except OSError:  # the peer is gone already: nothing left to close gracefully
            self.raw.reset()
