"""Noise transport messages after the handshake: sans-IO encoder and decoder.

Wire format (libp2p noise spec, "Wire Format"): every message is a 2-byte big-endian
length followed by that many bytes of ChaCha20-Poly1305 ciphertext (plaintext + 16-byte
tag), at most 65535 bytes, so at most 65519 bytes of plaintext per frame.  The nonce is
the Noise ChaChaPoly nonce: 4 zero bytes then the 8-byte little-endian message counter;
the associated data is empty.

We do the transport encryption ourselves (instead of through the ``noiseprotocol``
package's ``encrypt``/``decrypt``) because the data path is the hot path: the package
allocates new ``bytes`` for every message, while ``cryptography``'s ``encrypt_into`` /
``decrypt_into`` write straight into our buffers.  DESIGN.md section 3 measured that as
a factor of two or more.

No sockets, no asyncio, no clock here: bytes in, bytes out.
"""

from __future__ import annotations

import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from p2pkit_noise.errors import BadFrameLength, DecryptError, NonceExhausted

Buffer = bytes | bytearray | memoryview

MAX_FRAME = 65535
"""Largest Noise message (ciphertext including the tag)."""
TAG_LEN = 16
MAX_PLAINTEXT = MAX_FRAME - TAG_LEN
"""Largest plaintext carried by one frame: 65519."""
HEADER_LEN = 2
MAX_NONCE = 2**64 - 1
"""Noise reserves n = 2**64 - 1: a cipher state whose counter reaches it is exhausted."""

HAS_INTO = hasattr(ChaCha20Poly1305, "encrypt_into") and hasattr(ChaCha20Poly1305, "decrypt_into")
"""``cryptography`` >= 46 writes into our buffers; older versions get a copying fallback."""

_pack_nonce = struct.Struct("<4xQ").pack
_pack_header_into = struct.Struct(">H").pack_into


class _Cipher:
    """One direction's key and message counter."""

    __slots__ = ("_aead", "nonce")

    def __init__(self, key: bytes, nonce: int = 0) -> None:
        if len(key) != 32:
            raise ValueError("a ChaChaPoly key is 32 bytes")
        self._aead = ChaCha20Poly1305(key)
        self.nonce = nonce

    def _next_nonce(self) -> bytes:
        n = self.nonce
        if n >= MAX_NONCE:
            raise NonceExhausted("nonce space exhausted: the connection must be closed")
        self.nonce = n + 1
        return _pack_nonce(n)


class FrameEncoder(_Cipher):
    """Encrypts outgoing plaintext into length-prefixed frames.

    Every :meth:`encrypt` returns a *fresh* ``bytearray`` holding all the frames of the
    call, so the caller can hand it to ``transport.write()`` and forget it: CPython 3.12+
    keeps a reference to the written object until it is sent, so a reused buffer would
    be overwritten before it went out.  One buffer per call also means one socket write
    per call.
    """

    __slots__ = ()

    def encrypt(self, data: Buffer) -> bytearray:
        """Return the frames carrying ``data`` (full 65519-byte frames, then the rest).

        Empty ``data`` gives an empty result (no empty frame is sent).
        """
        size = len(data)
        if not size:
            return bytearray()
        nframes = -(-size // MAX_PLAINTEXT)
        out = bytearray(size + nframes * (HEADER_LEN + TAG_LEN))
        src = memoryview(data)
        if src.ndim != 1 or src.itemsize != 1:
            src = src.cast("B")
        dst = memoryview(out)
        aead = self._aead
        pos = 0
        off = 0
        while pos < size:
            chunk = min(MAX_PLAINTEXT, size - pos)
            flen = chunk + TAG_LEN
            _pack_header_into(out, off, flen)
            off += HEADER_LEN
            if HAS_INTO:
                aead.encrypt_into(
                    self._next_nonce(), src[pos : pos + chunk], None, dst[off : off + flen]
                )
            else:
                dst[off : off + flen] = aead.encrypt(
                    self._next_nonce(), bytes(src[pos : pos + chunk]), None
                )
            off += flen
            pos += chunk
        dst.release()
        src.release()
        return out


class FrameDecoder(_Cipher):
    """Decrypts incoming ciphertext bytes, chunked in any way, into plaintext.

    :meth:`feed` takes whatever the socket delivered (a part of a frame, many frames,
    or both), decrypts every complete frame straight from the input into one reused
    output buffer (no copy of the ciphertext except for a frame split across reads),
    and returns the plaintext as a memoryview of that buffer.  The view is valid until
    the next :meth:`feed`: copy what you keep.

    Errors: when a chunk holds good frames followed by a bad one, :meth:`feed` returns
    the plaintext of the good frames and records the error in :attr:`error` (check it
    after using the plaintext); when nothing good came before it, :meth:`feed` raises.
    Either way the decoder is dead afterwards: every later call raises the same error
    (the connection must be closed; a Noise stream cannot resynchronise).
    """

    __slots__ = ("_error", "_good", "_out", "_pending")

    def __init__(self, key: bytes, nonce: int = 0) -> None:
        super().__init__(key, nonce)
        self._pending = bytearray()
        self._out = bytearray(MAX_PLAINTEXT)
        self._error: Exception | None = None
        self._good = 0  # plaintext bytes produced so far by the current feed()

    @property
    def error(self) -> Exception | None:
        """The error that killed the decoder, if any."""
        return self._error

    @property
    def pending(self) -> int:
        """Bytes of an incomplete frame held back (0 between whole frames)."""
        return len(self._pending)

    def feed(self, data: Buffer) -> memoryview:
        """Consume ``data``; return the plaintext of every frame it completed."""
        if self._error is not None:
            raise self._error
        self._good = 0
        try:
            return self._feed(data)
        except (DecryptError, BadFrameLength, NonceExhausted) as exc:
            self._error = exc
            self._pending = bytearray()
            if not self._good:
                raise
            return memoryview(self._out)[: self._good]

    def feed_eof(self) -> None:
        """The ciphertext stream ended: raise if it ended inside a frame."""
        if self._error is not None:
            raise self._error
        if self._pending:
            self._error = BadFrameLength(
                f"stream ended inside a frame ({len(self._pending)} bytes of it received)"
            )
            raise self._error

    def _feed(self, data: Buffer) -> memoryview:
        src = memoryview(data)
        if src.ndim != 1 or src.itemsize != 1:
            src = src.cast("B")
        total = len(src)
        pending = self._pending
        # Plaintext is always shorter than the ciphertext it came from.
        if len(self._out) < len(pending) + total:
            self._out = bytearray(len(pending) + total)
        out = memoryview(self._out)
        o = 0
        pos = 0
        if pending:
            pos, o = self._complete_pending(src, out)
            self._good = o
            if self._pending:
                # Still incomplete: everything went into it.
                return out[:0]
        while total - pos >= HEADER_LEN:
            flen = (src[pos] << 8) | src[pos + 1]
            if flen < TAG_LEN:
                raise BadFrameLength(f"frame of {flen} bytes cannot hold the 16-byte tag")
            end = pos + HEADER_LEN + flen
            if end > total:
                break
            o += self._decrypt(src[pos + HEADER_LEN : end], out[o : o + flen - TAG_LEN])
            self._good = o
            pos = end
        if pos < total:
            self._pending += src[pos:]
        return out[:o]

    def _complete_pending(self, src: memoryview, out: memoryview) -> tuple[int, int]:
        """Add bytes from ``src`` to the held-back partial frame; decrypt it if whole.

        Returns (bytes of ``src`` consumed, plaintext bytes written to ``out``).
        """
        pending = self._pending
        pos = 0
        total = len(src)
        if len(pending) < HEADER_LEN:
            take = min(HEADER_LEN - len(pending), total)
            pending += src[:take]
            pos = take
            if len(pending) < HEADER_LEN:
                return pos, 0
        flen = (pending[0] << 8) | pending[1]
        if flen < TAG_LEN:
            raise BadFrameLength(f"frame of {flen} bytes cannot hold the 16-byte tag")
        take = min(HEADER_LEN + flen - len(pending), total - pos)
        pending += src[pos : pos + take]
        pos += take
        if len(pending) < HEADER_LEN + flen:
            return pos, 0
        with memoryview(pending) as pv:
            n = self._decrypt(pv[HEADER_LEN:], out[: flen - TAG_LEN])
        pending.clear()
        return pos, n

    def _decrypt(self, frame: memoryview, dst: memoryview) -> int:
        try:
            if HAS_INTO:
                return self._aead.decrypt_into(self._next_nonce(), frame, None, dst)
            plain = self._aead.decrypt(self._next_nonce(), bytes(frame), None)
            dst[:] = plain
            return len(plain)
        except InvalidTag:
            raise DecryptError(
                f"transport message {self.nonce - 1} failed authentication"
            ) from None
