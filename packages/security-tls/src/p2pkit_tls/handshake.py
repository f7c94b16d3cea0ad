"""Sans-IO TLS 1.3 endpoint: ciphertext in, plaintext out, and the other way round.

An OpenSSL connection over memory BIOs is already a pure state machine: it never
touches a socket or a clock.  :class:`TlsSession` wraps it with the libp2p rules --
certificate verification in OpenSSL's verify callback (so a bad peer gets a TLS alert
and the handshake aborts before any application data), exactly-one-certificate, the
PeerId check, ALPN early muxer negotiation -- and turns OpenSSL's exceptions into
p2pkit's typed errors.  The asyncio shell (:mod:`p2pkit_tls.connection`) only moves
bytes between this object and a RawConnection.
"""

from __future__ import annotations

from collections.abc import Sequence

from cryptography.hazmat.primitives import serialization
from OpenSSL import SSL, crypto

from p2pkit.abc import Buffer
from p2pkit.crypto import PublicKey
from p2pkit.crypto.tls_certificate import TooManyCertificates, verify_certificate
from p2pkit.errors import HandshakeError, PeerIdMismatch, ProtocolError, StreamClosed
from p2pkit.peer import PeerId
from p2pkit_tls.context import ALPN_LIBP2P, TlsIdentity

__all__ = ["TlsProtocolError", "TlsSession"]

_READ_SIZE = 65536  # > one TLS record (16 KiB plaintext): one SSL_read returns one record
_RECORD_OVERHEAD = 5 + 1 + 16  # TLS 1.3 record header + inner content type + AEAD tag


class TlsProtocolError(ProtocolError):
    """TLS failed after the handshake (bad record, alert from the peer)."""


class TlsSession:
    """One TLS 1.3 connection, either role, without I/O.

    Handshake: feed the peer's bytes with :meth:`receive_data`, call
    :meth:`do_handshake` until it returns True, send :meth:`data_to_send` after every
    call.  Afterwards :attr:`remote_public_key`, :attr:`remote_peer` and
    :attr:`early_muxer` are set; :meth:`encrypt` / :meth:`read` move application data.
    """

    def __init__(
        self,
        identity: TlsIdentity,
        *,
        is_initiator: bool,
        muxers: Sequence[str] = (),
        expected_peer: PeerId | None = None,
    ) -> None:
        self.is_initiator = is_initiator
        self.expected_peer = expected_peer
        self._muxers = list(muxers)
        self.alpn_protocols = [m.encode() for m in self._muxers] + [ALPN_LIBP2P.encode()]
        self._conn = SSL.Connection(identity.context(), None)
        # Read by the context's verify and ALPN callbacks (see context.py); cleared when
        # the handshake ends so that the OpenSSL connection does not keep us alive.
        self._conn.set_app_data(self)
        if is_initiator:
            # No SNI (spec: clients of this version MUST NOT send one).
            self._conn.set_alpn_protos(self.alpn_protocols)
            self._conn.set_connect_state()
        else:
            self._conn.set_accept_state()
        self._verify_error: BaseException | None = None
        self._verified: tuple[PublicKey, PeerId] | None = None
        self.handshake_complete = False
        self.remote_public_key: PublicKey | None = None
        self.remote_peer: PeerId | None = None
        self.early_muxer: str | None = None
        self.write_closed = False
        self.read_closed = False

    # -- verification (called by OpenSSL during the handshake) ------------------------

    def verify_callback(
        self, conn: SSL.Connection, cert: crypto.X509, errno: int, depth: int, ok: int
    ) -> bool:
        """Accept exactly a libp2p self-signed certificate, whatever OpenSSL thinks.

        OpenSSL reports the certificate as self-signed / untrusted and the libp2p
        extension as an unhandled critical extension (``ok == 0``): both are expected;
        the libp2p rules below replace the PKI ones.  Called several times per depth.
        """
        if self._verify_error is not None:
            return False
        if depth != 0:
            # Something above the leaf: the peer sent a chain (a certificate issued by
            # another one it also sent).  libp2p allows exactly one certificate.
            self._verify_error = TooManyCertificates("peer sent a certificate chain")
            return False
        if self._verified is None:
            try:
                if self.is_initiator:
                    # On the client side OpenSSL exposes the whole chain sent by the server.
                    chain = conn.get_peer_cert_chain() or []
                    if len(chain) != 1:
                        raise TooManyCertificates(
                            f"expected exactly one certificate, got {len(chain)}"
                        )
                der = cert.to_cryptography().public_bytes(serialization.Encoding.DER)
                key = verify_certificate(der)
                peer = PeerId.from_public_key(key)
                if self.expected_peer is not None and peer != self.expected_peer:
                    raise PeerIdMismatch(self.expected_peer, peer)
                self._verified = (key, peer)
            except Exception as exc:  # every failure must abort the handshake
                self._verify_error = (
                    exc if isinstance(exc, HandshakeError) else HandshakeError(repr(exc))
                )
                return False
        return True

    # -- bytes in / out -------------------------------------------------------------------

    def receive_data(self, data: Buffer) -> None:
        """Feed ciphertext received from the peer."""
        if data:
            self._conn.bio_write(data)

    def data_to_send(self, size_hint: int = 0) -> bytes:
        """Ciphertext waiting to go to the peer (b"" if none)."""
        want = max(size_hint, 16384)
        parts: list[bytes] = []
        while True:
            try:
                chunk = self._conn.bio_read(want)
            except SSL.WantReadError:
                break
            parts.append(chunk)
            if len(chunk) < want:  # a memory BIO returns everything it has, up to want
                break
        if not parts:
            return b""
        return parts[0] if len(parts) == 1 else b"".join(parts)

    # -- handshake -------------------------------------------------------------------------

    def do_handshake(self) -> bool:
        """Advance the handshake; True once complete.  Raises typed HandshakeErrors.

        After an error, :meth:`data_to_send` may still hold an alert for the peer.
        """
        if self.handshake_complete:
            return True
        try:
            self._conn.do_handshake()
        except SSL.WantReadError:
            return False
        except HandshakeError:  # raised by our own callbacks (context._select_alpn)
            self._conn.set_app_data(None)
            raise
        except SSL.Error as exc:
            self._conn.set_app_data(None)
            raise self._handshake_error(exc) from exc
        if self._verify_error is not None:  # pragma: no cover - OpenSSL aborts first
            raise self._verify_error
        if self._verified is None:
            raise HandshakeError("peer presented no certificate")
        if not self.is_initiator:
            # The server side of OpenSSL does not count the leaf in the peer chain.
            extra = self._conn.get_peer_cert_chain() or []
            if extra:
                raise TooManyCertificates(f"expected exactly one certificate, got {1 + len(extra)}")
        if self._conn.get_protocol_version_name() not in ("TLSv1.3",):
            raise HandshakeError(f"negotiated {self._conn.get_protocol_version_name()}")
        self.remote_public_key, self.remote_peer = self._verified
        selected = self._conn.get_alpn_proto_negotiated().decode("utf-8", "replace")
        self.early_muxer = selected if selected in self._muxers else None
        self.handshake_complete = True
        # The callbacks are done (TLS 1.3 has no renegotiation).
        self._conn.set_app_data(None)
        return True

    def release(self) -> None:
        """Detach from the OpenSSL connection's callbacks (after a failed handshake), so
        the two objects are freed by refcounting rather than by the cycle collector."""
        self._conn.set_app_data(None)

    def _handshake_error(self, exc: SSL.Error) -> HandshakeError:
        if self._verify_error is not None:
            return (
                self._verify_error
                if isinstance(self._verify_error, HandshakeError)
                else HandshakeError(repr(self._verify_error))
            )
        return HandshakeError(f"TLS handshake failed: {_describe(exc)}")

    # -- application data ---------------------------------------------------------------------

    def encrypt(self, data: Buffer) -> bytes:
        """Encrypt ``data``; returns the ciphertext to send (all records of it)."""
        if self.write_closed:
            raise StreamClosed("TLS write side closed")
        n = len(data)
        if n:
            try:
                self._conn.sendall(data)
            except SSL.Error as exc:
                raise TlsProtocolError(f"TLS write failed: {_describe(exc)}") from exc
        records = n // 16384 + 1
        return self.data_to_send(n + records * _RECORD_OVERHEAD + 64)

    def read(self) -> bytes | None:
        """One chunk of decrypted application data (at most one record).

        None: more ciphertext is needed.  b"": the peer sent close_notify (EOF).
        Raises TlsProtocolError on a bad record or an alert.
        """
        if self.read_closed:
            return b""
        try:
            return self._conn.recv(_READ_SIZE)
        except SSL.WantReadError:
            return None
        except SSL.ZeroReturnError:
            self.read_closed = True
            return b""
        except SSL.Error as exc:
            raise TlsProtocolError(f"TLS read failed: {_describe(exc)}") from exc

    def close_write(self) -> bytes:
        """Send close_notify (TLS 1.3 half-close, like go's ``tls.Conn.CloseWrite``).

        Returns the ciphertext to send.  Reading keeps working.  Idempotent.
        """
        if self.write_closed:
            return b""
        self.write_closed = True
        try:
            self._conn.shutdown()
        except SSL.Error:
            return b""
        return self.data_to_send()


def _describe(exc: SSL.Error) -> str:
    """OpenSSL's error stack as a short string."""
    try:
        parts = [str(item[-1]) for item in exc.args[0] if item]
    except (IndexError, TypeError):
        parts = []
    return ", ".join(p for p in parts if p) or type(exc).__name__
