"""The libp2p Noise XX handshake as a sans-IO state machine.

``Noise_XX_25519_ChaChaPoly_SHA256``, empty prologue::

    -> e                                   (message 1, empty payload)
    <- e, ee, s, es  + responder payload   (message 2)
    -> s, se         + initiator payload   (message 3)

The Noise cryptography (DH, HKDF, handshake AEAD) is done by the ``noiseprotocol``
package; this module adds what libp2p puts on top: the 2-byte big-endian framing of
each message, the signed identity payload, the peer id check and early muxer
negotiation.  Bytes in (:meth:`NoiseHandshake.receive_data`, which returns events),
bytes out (:meth:`NoiseHandshake.data_to_send`), no I/O: the asyncio side
(:mod:`p2pkit_noise.security`) moves them and owns the timeout.  The conventions are
those of every p2pkit sans-IO machine (``docs/sansio.md``).

When the handshake is :attr:`~NoiseHandshake.done` (event :class:`HandshakeCompleted`),
:attr:`NoiseHandshake.result` holds the two transport keys taken out of
``noiseprotocol``'s cipher states (the transport encryption is ours, see
:mod:`p2pkit_noise.framing`) and :attr:`NoiseHandshake.leftover` any bytes that arrived
after the last handshake message (the first transport frames).
"""

from __future__ import annotations

import dataclasses
import enum
import functools
from collections.abc import Sequence
from typing import Any

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from noise.connection import Keypair
from noise.connection import NoiseConnection as _NoiseState

from p2pkit.crypto import PrivateKey, PublicKey
from p2pkit.errors import PeerIdMismatch
from p2pkit.peer import PeerId
from p2pkit_noise.errors import (
    InvalidHandshakePayload,
    NoiseHandshakeError,
    NoMuxerOverlap,
)
from p2pkit_noise.payload import (
    SIGNATURE_PREFIX,
    HandshakePayload,
    NoiseExtensions,
    verify_payload,
)

PROTOCOL_NAME = b"Noise_XX_25519_ChaChaPoly_SHA256"
MAX_MESSAGE = 65535


def generate_static_key() -> bytes:
    """A fresh X25519 private key (32 raw bytes) for the Noise static keypair."""
    return X25519PrivateKey.generate().private_bytes_raw()


@functools.lru_cache(maxsize=32)
def static_public_key(static_private: bytes) -> bytes:
    """The X25519 public key of a static key (cached: one static key serves many handshakes)."""
    return X25519PrivateKey.from_private_bytes(static_private).public_key().public_bytes_raw()


def select_muxer(initiator: Sequence[str], responder: Sequence[str]) -> str | None:
    """The early-muxer rule: the first of the initiator's muxers the responder supports.

    Both roles call this with the same arguments (initiator's list first), so both
    agree.  None when either list is empty (fall back to multistream-select); raises
    :class:`NoMuxerOverlap` when both are non-empty and disjoint (the spec says the
    handshake MUST fail).
    """
    if not initiator or not responder:
        return None
    theirs = set(responder)
    for muxer in initiator:
        if muxer in theirs:
            return muxer
    raise NoMuxerOverlap(list(initiator), list(responder))


@dataclasses.dataclass(frozen=True)
class HandshakeResult:
    """What a completed handshake established: the peer and the transport keys."""

    remote_peer: PeerId
    remote_public_key: PublicKey
    remote_extensions: NoiseExtensions | None
    early_muxer: str | None
    send_key: bytes
    recv_key: bytes
    send_nonce: int = 0
    recv_nonce: int = 0


@dataclasses.dataclass(frozen=True, slots=True)
class HandshakeCompleted:
    """The handshake is done: the peer is authenticated, ``result`` holds the keys."""

    result: HandshakeResult


Event = HandshakeCompleted


class _Step(enum.Enum):
    READ_1 = "read message 1"
    READ_2 = "read message 2"
    READ_3 = "read message 3"
    DONE = "done"
    FAILED = "failed"


class NoiseHandshake:
    """One side of one handshake.

    Usage: send :meth:`data_to_send` (the initiator's message 1 is queued by the
    constructor; the responder has nothing to say first), then feed every received
    byte to :meth:`receive_data` and send :meth:`data_to_send`, until :attr:`done`
    (:class:`HandshakeCompleted`).  Errors are typed
    (:class:`~p2pkit.errors.HandshakeError`, :class:`~p2pkit.errors.PeerIdMismatch`,
    ...) and raised from :meth:`receive_data`; the machine is dead then (every later
    call raises the same error) and the connection must be closed.

    ``muxers``: our stream muxers for early negotiation, or None to not take part.
    ``expected_peer``: for the initiator, the peer id we dialed (mismatch raises
    :class:`~p2pkit.errors.PeerIdMismatch`).
    ``static_key`` / ``identity_sig``: a Noise static key and its signature, reused
    across handshakes to save a signature per connection (RSA signing is slow); a
    fresh key is generated and signed when not given.
    """

    def __init__(
        self,
        *,
        is_initiator: bool,
        identity: PrivateKey,
        muxers: Sequence[str] | None = None,
        expected_peer: PeerId | None = None,
        static_key: bytes | None = None,
        identity_sig: bytes | None = None,
    ) -> None:
        self.is_initiator = is_initiator
        self._identity = identity
        self._muxers = tuple(muxers) if muxers else ()
        self._expected = expected_peer
        static_key = static_key if static_key is not None else generate_static_key()
        self._static_public = static_public_key(static_key)
        self._sig = (
            identity_sig
            if identity_sig is not None
            else identity.sign(SIGNATURE_PREFIX + self._static_public)
        )
        state = _NoiseState.from_name(PROTOCOL_NAME)
        if is_initiator:
            state.set_as_initiator()
        else:
            state.set_as_responder()
        state.set_keypair_from_private_bytes(Keypair.STATIC, static_key)
        state.set_prologue(b"")
        state.start_handshake()
        self._state = state
        # Keep our own reference: noiseprotocol deletes its handshake state (and with
        # it the remote static key) as soon as the last message is processed.
        self._hs: Any = state.noise_protocol.handshake_state
        self._step = _Step.READ_2 if is_initiator else _Step.READ_1
        self._buf = bytearray()
        self._outbox = bytearray()
        self._result: HandshakeResult | None = None
        self._remote: tuple[PublicKey, PeerId, NoiseExtensions | None] | None = None
        self.error: Exception | None = None
        """The error :meth:`receive_data` raised, if any (raised again by every later call)."""
        if is_initiator:
            self._outbox += self._write(b"")  # message 1

    # -- public API ------------------------------------------------------------------

    @property
    def done(self) -> bool:
        """True once the handshake completed (:attr:`result` is available)."""
        return self._step is _Step.DONE

    @property
    def result(self) -> HandshakeResult:
        if self._result is None:
            raise RuntimeError("handshake not complete")
        return self._result

    @property
    def leftover(self) -> bytes:
        """Bytes received after the final handshake message (transport frames)."""
        return bytes(self._buf) if self.done else b""

    def data_to_send(self) -> bytes:
        """Handshake messages (framed) to send now (``b""`` when there are none)."""
        out = bytes(self._outbox)
        self._outbox.clear()
        return out

    def receive_data(self, data: bytes | bytearray | memoryview) -> list[Event]:
        """Feed received bytes; returns ``[HandshakeCompleted(result)]`` when they
        complete the handshake, else ``[]``.  Bytes after the last handshake message
        are kept in :attr:`leftover`."""
        if self.error is not None:
            raise self.error
        self._buf += data
        events: list[Event] = []
        if self.done:
            return events
        try:
            while not self.done:
                msg = self._next_message()
                if msg is None:
                    break
                self._outbox += self._handle(msg)
        except Exception as exc:
            self._step = _Step.FAILED
            self.error = exc
            raise
        if self._result is not None:  # completed by this call
            events.append(HandshakeCompleted(self._result))
        return events

    # -- internals -------------------------------------------------------------------

    def _next_message(self) -> bytes | None:
        buf = self._buf
        if len(buf) < 2:
            return None
        n = (buf[0] << 8) | buf[1]
        if len(buf) < 2 + n:
            return None
        msg = bytes(buf[2 : 2 + n])
        del buf[: 2 + n]
        return msg

    def _handle(self, msg: bytes) -> bytes:
        step = self._step
        if step is _Step.READ_1:
            self._read(msg, 1)  # message 1 carries no payload we use
            out = self._write(self._our_payload())
            self._step = _Step.READ_3
            return out
        if step is _Step.READ_2:
            self._remote = self._check_remote(self._read(msg, 2))
            ext = self._remote[2]
            # Fail before sending message 3 when the muxer lists are disjoint.
            select_muxer(self._muxers, ext.stream_muxers if ext else ())
            out = self._write(self._our_payload())
            self._finish()
            return out
        if step is _Step.READ_3:
            self._remote = self._check_remote(self._read(msg, 3))
            self._finish()
            return b""
        raise NoiseHandshakeError(f"unexpected handshake message in state {step.value}")

    def _our_payload(self) -> bytes:
        ext = NoiseExtensions(stream_muxers=self._muxers)
        payload = HandshakePayload(self._identity.public_key.to_protobuf(), self._sig, ext)
        return payload.encode()

    def _write(self, payload: bytes) -> bytes:
        try:
            msg = bytes(self._state.write_message(payload))
        except Exception as exc:  # e.g. DH with a low-order point the peer sent
            raise NoiseHandshakeError(
                f"cannot write handshake message: {type(exc).__name__}: {exc}"
            ) from exc
        if len(msg) > MAX_MESSAGE:
            raise NoiseHandshakeError(f"our handshake message is {len(msg)} bytes (max 65535)")
        return len(msg).to_bytes(2, "big") + msg

    def _read(self, msg: bytes, number: int) -> bytes:
        try:
            return bytes(self._state.read_message(msg))
        except Exception as exc:  # noiseprotocol raises many unrelated types
            raise NoiseHandshakeError(
                f"invalid handshake message {number} ({len(msg)} bytes): "
                f"{type(exc).__name__}: {exc}"
            ) from exc

    def _check_remote(self, plaintext: bytes) -> tuple[PublicKey, PeerId, NoiseExtensions | None]:
        if not plaintext:
            raise InvalidHandshakePayload("handshake message carries no identity payload")
        payload = HandshakePayload.decode(plaintext)
        key, peer = verify_payload(payload, self._hs.rs.public_bytes)
        if self._expected is not None and peer != self._expected:
            raise PeerIdMismatch(self._expected, peer)
        return key, peer, payload.extensions

    def _finish(self) -> None:
        assert self._remote is not None and self._state.handshake_finished
        key, peer, ext = self._remote
        theirs = ext.stream_muxers if ext else ()
        if self.is_initiator:
            muxer = select_muxer(self._muxers, theirs)
        else:
            muxer = select_muxer(theirs, self._muxers)
        proto = self._state.noise_protocol
        enc, dec = proto.cipher_state_encrypt, proto.cipher_state_decrypt
        self._result = HandshakeResult(
            remote_peer=peer,
            remote_public_key=key,
            remote_extensions=ext,
            early_muxer=muxer,
            send_key=bytes(enc.k),
            recv_key=bytes(dec.k),
            send_nonce=int(enc.n),
            recv_nonce=int(dec.n),
        )
        self._step = _Step.DONE
