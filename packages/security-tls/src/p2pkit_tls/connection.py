"""The asyncio shell: a :class:`TlsSession` over a RawConnection, as a SecureConnection.

No task of its own.  Pull mode (handshake, negotiation): ``read`` pulls ciphertext
from the raw connection and decrypts it into a :class:`~p2pkit.io.ReadBuffer`.  Push
mode (muxer): the raw connection pushes ciphertext into us, we decrypt it in the same
call chain and push each plaintext record to the receiver.  Writes are encrypted on
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

from p2pkit.abc import Buffer, RawConnection, Receiver, SecureConnection
from p2pkit.crypto import PublicKey
from p2pkit.errors import ConnectionClosed, HandshakeError, HandshakeTimeout, StreamReset
from p2pkit.io import ReadBuffer
from p2pkit.peer import PeerId
from p2pkit_tls.handshake import TlsProtocolError, TlsSession

if TYPE_CHECKING:
    from multiaddr import Multiaddr

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


class _RawReceiver:
    """Receives ciphertext from the raw connection in push mode (kept apart from the
    Channel methods of TlsConnection so the two directions cannot be confused)."""

    __slots__ = ("_conn",)

    def __init__(self, conn: TlsConnection) -> None:
        self._conn = conn

    def data_received(self, data: memoryview) -> None:
        self._conn._ciphertext_received(data)

    def eof_received(self) -> None:
        self._conn._raw_eof_received()

    def connection_lost(self, exc: BaseException | None) -> None:
        self._conn._raw_connection_lost(exc)


class TlsConnection(SecureConnection):
    """A TLS 1.3 secured channel with an authenticated remote PeerId."""

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
        self._raw = raw
        self._session = session
        self.is_initiator = raw.is_initiator
        self.local_peer = local_peer
        self.remote_peer: PeerId = session.remote_peer
        self.remote_public_key: PublicKey = session.remote_public_key
        self.security_protocol = security_protocol
        self.early_muxer = session.early_muxer
        self._buf = ReadBuffer()
        self._receiver: Receiver | None = None
        self._paused = False
        self._raw_eof = False
        self._eof_delivered = False
        self._lost_delivered = False
        self._closed = False
        self._resume_scheduled = False

    # -- properties ----------------------------------------------------------------------

    @property
    def local_addr(self) -> Multiaddr | None:
        return self._raw.local_addr

    @property
    def remote_addr(self) -> Multiaddr | None:
        return self._raw.remote_addr

    @property
    def closed(self) -> bool:
        return self._closed or self._raw.closed

    @property
    def write_paused(self) -> bool:
        return self._raw.write_paused

    # -- receive ---------------------------------------------------------------------------

    def _pump(self) -> None:
        """Decrypt every complete record held by the session and deliver it."""
        session = self._session
        while not self._closed and (not self._paused or self._receiver is None):
            try:
                chunk = session.read()
            except TlsProtocolError as exc:
                self._fail(exc)
                return
            if chunk is None:
                if self._raw_eof:
                    self._deliver_eof()  # TCP EOF without close_notify: EOF all the same
                return
            if not chunk:
                self._deliver_eof()
                return
            receiver = self._receiver
            if receiver is None:
                self._buf.feed(chunk)
                return  # pull mode: decrypt lazily, one record per need
            receiver.data_received(memoryview(chunk))

    def _deliver_eof(self) -> None:
        if self._eof_delivered:
            return
        self._eof_delivered = True
        if self._receiver is not None:
            self._receiver.eof_received()
        else:
            self._buf.feed_eof()

    def _fail(self, exc: BaseException) -> None:
        """A fatal TLS error: tell the reader, tear the connection down."""
        if self._receiver is not None:
            if not self._lost_delivered:
                self._lost_delivered = True
                self._receiver.connection_lost(exc)
        else:
            self._buf.fail(exc)
        self._closed = True
        self._raw.reset()

    def _ciphertext_received(self, data: memoryview) -> None:
        try:
            self._session.receive_data(data)
        except Exception as exc:  # pragma: no cover - memory BIO writes do not fail
            self._fail(TlsProtocolError(repr(exc)))
            return
        self._pump()

    def _raw_eof_received(self) -> None:
        self._raw_eof = True
        self._pump()

    def _raw_connection_lost(self, exc: BaseException | None) -> None:
        if exc is None:
            self._raw_eof_received()
        if self._receiver is not None and not self._lost_delivered:
            self._lost_delivered = True
            self._receiver.connection_lost(exc)

    async def read(self, max_bytes: int = -1) -> bytes:
        if self._receiver is not None:
            raise RuntimeError("read() after start_push()")
        if max_bytes == 0:
            return b""
        while True:
            data = self._buf.read_nowait(max_bytes)
            if data is not None:
                return data
            self._pump()  # records already received but not yet decrypted
            if self._buf.size or self._buf.at_eof or self._buf.exception is not None:
                continue
            if self._raw_eof:  # pragma: no cover - _pump delivered EOF
                self._deliver_eof()
                continue
            try:
                ciphertext = await self._raw.read()
            except StreamReset as exc:
                self._buf.fail(exc)
                raise
            if not ciphertext:
                self._raw_eof = True
            else:
                self._session.receive_data(ciphertext)

    def unread(self, data: bytes) -> None:
        self._buf.unread(data)

    def start_push(self, receiver: Receiver) -> None:
        if self._receiver is not None:
            raise RuntimeError("start_push() called twice")
        self._receiver = receiver
        # Plaintext already decrypted in pull mode (including unread bytes) goes first.
        exc = self._buf.exception
        if exc is not None:
            self._lost_delivered = True
            receiver.connection_lost(exc)
            return
        data = self._buf.read_nowait()
        if data:
            receiver.data_received(memoryview(data))
        if self._eof_delivered:
            self._eof_delivered = False
            self._deliver_eof()
        self._pump()
        self._raw.start_push(_RawReceiver(self))

    def pause_reading(self) -> None:
        self._paused = True
        self._raw.pause_reading()

    def resume_reading(self) -> None:
        self._paused = False
        # Records decrypted-but-undelivered may wait in the session: deliver them soon,
        # not re-entrantly inside the caller (which may be in the middle of its own work).
        if self._receiver is not None and not self._resume_scheduled:
            self._resume_scheduled = True
            asyncio.get_running_loop().call_soon(self._resumed)
        self._raw.resume_reading()

    def _resumed(self) -> None:
        self._resume_scheduled = False
        if not self._paused and not self._closed:
            self._pump()

    # -- send -----------------------------------------------------------------------------

    def write_nowait(self, data: Buffer) -> None:
        if self._closed:
            raise ConnectionClosed("TLS connection closed")
        ciphertext = self._session.encrypt(data)  # raises StreamClosed after close_write
        if ciphertext:
            self._raw.write_nowait(ciphertext)

    async def write(self, data: Buffer) -> None:
        self.write_nowait(data)
        await self._raw.drain()

    async def drain(self) -> None:
        await self._raw.drain()

    async def close_write(self) -> None:
        if self._closed or self._session.write_closed:
            return
        alert = self._session.close_write()
        if alert:
            self._raw.write_nowait(alert)
            await self._raw.drain()

    async def close(self) -> None:
        if self._closed:
            return
        try:
            if not self._raw.closed and not self._session.write_closed:
                alert = self._session.close_write()
                if alert:
                    self._raw.write_nowait(alert)
        except Exception:  # closing must not fail because the peer went away
            pass
        self._closed = True
        if self._receiver is None:
            self._buf.fail(ConnectionClosed("TLS connection closed"))
        try:
            await self._raw.close()
        except OSError:  # the peer is gone already: nothing left to close gracefully
            self._raw.reset()

    def reset(self) -> None:
        if self._receiver is None:
            self._buf.fail(StreamReset("TLS connection reset"))
        self._closed = True
        self._raw.reset()
