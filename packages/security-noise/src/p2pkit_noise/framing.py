"""Noise transport messages after the handshake: sans-IO encoder and decoder.

Wire format (libp2p noise spec, "Wire Format"): every message is a 2-byte big-endian
length followed by that many bytes of ChaCha20-Poly1305 ciphertext (plaintext + 16-byte
tag), at most 65535 bytes, so at most 65519 bytes of plaintext per frame.  The nonce is
the Noise ChaChaPoly nonce: 4 zero bytes then the 8-byte little-endian message counter;
the associated data is empty.

We do the transport encryption ourselves (instead of through the ``noiseprotocol``
package's ``encrypt``/``decrypt``) because the data path is the hot path: the package
allocates new ``bytes`` for every message, while ``cryptography``'s ``encrypt_into`` /
``decrypt_into`` write straight into our buffers.  That was measured as a
factor of two or more (see "The data path" in docs/architecture.md).

No sockets, no asyncio, no clock here: bytes in, bytes out.  These two are codecs on
the data path, not protocol machines, so they keep their own verbs (``encrypt`` /
``seal``, ``feed`` / ``feed_eof``) and return buffers instead of events; errors follow
the common rule of ``docs/sansio.md`` (typed, kept in ``error``, the decoder dead
afterwards).
"""

from __future__ import annotations

import struct
import sys
import threading
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from p2pkit.bufpool import thread_pool
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


def frames_size(size: int) -> int:
    """Bytes on the wire for ``size`` bytes of plaintext (full frames, then the rest)."""
    return size + -(-size // MAX_PLAINTEXT) * (HEADER_LEN + TAG_LEN)


_MIN_OUT = 4096
"""Smallest plaintext output buffer taken from the pool."""

POOL_MIN = 64 * 1024
"""Outputs at least this large come from the buffer pool (smaller ones are cheap to
allocate)."""
POOL_MAX = 2 * 1024 * 1024
"""Larger outputs are allocated fresh: the pool keeps its memory for good."""
POOL_SIZE = 4
"""Pooled output buffers per thread, shared by every encoder of that thread: enough for
the few writes a transport holds while its socket is full, and a bound on the memory
kept (at most POOL_SIZE x POOL_MAX) however many connections there are.  When all are
busy, outputs are allocated fresh."""

_local = threading.local()


def _thread_pool() -> list[bytearray]:
    pool: list[bytearray] | None = getattr(_local, "pool", None)
    if pool is None:
        pool = _local.pool = []
    return pool


def _refs(pool: list[bytearray], i: int) -> int:
    return sys.getrefcount(pool[i])


def _calibrate() -> int:
    pool = [bytearray(1)]
    return _refs(pool, 0)


_FREE_REFS = _calibrate() if hasattr(sys, "getrefcount") else -1
"""What :func:`_refs` reports for a pooled buffer nobody else holds (measured, not
assumed, so an interpreter that counts differently still works; -1 disables the pool
where there is no reference count, e.g. PyPy)."""


def _pooled(need: int) -> bytearray:
    """A buffer of at least ``need`` bytes that nobody else references."""
    pool = _thread_pool()
    for i in range(len(pool)):
        if _refs(pool, i) == _FREE_REFS:
            if len(pool[i]) < need:
                pool[i] = bytearray(need)
            return pool[i]
    buf = bytearray(need)
    if len(pool) < POOL_SIZE:
        pool.append(buf)
    return buf


class FrameEncoder(_Cipher):
    """Encrypts outgoing plaintext into length-prefixed frames.

    :meth:`encrypt` returns a *fresh* ``bytearray`` holding all the frames of the
    call.  :meth:`seal` does the same for several buffers at once (one socket write
    for all of them) and takes large outputs from a small per-thread pool instead: a new
    ``bytearray`` is zero-filled by CPython, which costs a few percent of the data
    path.  A pooled buffer is reused only when its reference count shows that nobody
    else holds it or a view of it -- CPython 3.12+ transports keep a view of what they
    could not send yet, so a buffer still queued for the socket is never overwritten.
    """

    __slots__ = ()

    def encrypt(self, data: Buffer) -> bytearray:
        """Return the frames carrying ``data`` (full 65519-byte frames, then the rest).

        Empty ``data`` gives an empty result (no empty frame is sent).
        """
        out = bytearray(frames_size(len(data)))
        with memoryview(out) as dst:
            self._encrypt_into(data, dst, 0)
        return out

    def seal(self, parts: Sequence[Buffer]) -> Buffer:
        """The frames of every part, in order, in one buffer.

        Each part is framed on its own (a frame never spans two parts).  The result
        must be handed to a writer and then dropped: once no one references it, its
        memory is reused.
        """
        need = 0
        for part in parts:
            need += frames_size(len(part))
        if need < POOL_MIN or need > POOL_MAX or _FREE_REFS < 0:
            out = bytearray(need)
        else:
            out = _pooled(need)
        with memoryview(out) as dst:
            off = 0
            for part in parts:
                off = self._encrypt_into(part, dst, off)
            if len(out) == need:
                return out
            return dst[:need]

    def _encrypt_into(self, data: Buffer, dst: memoryview, off: int) -> int:
        """Write the frames of ``data`` into ``dst`` at ``off``; return the new offset."""
        size = len(data)
        if not size:
            return off
        src = memoryview(data)
        if src.ndim != 1 or src.itemsize != 1:
            src = src.cast("B")
        aead = self._aead
        pos = 0
        while pos < size:
            chunk = min(MAX_PLAINTEXT, size - pos)
            flen = chunk + TAG_LEN
            _pack_header_into(dst, off, flen)
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
        src.release()
        return off


class FrameDecoder(_Cipher):
    """Decrypts incoming ciphertext bytes, chunked in any way, into plaintext.

    :meth:`feed` takes whatever the socket delivered (a part of a frame, many frames,
    or both), decrypts every complete frame straight from the input into an output
    buffer (no copy of the ciphertext except for a frame split across reads), and
    returns the plaintext as a memoryview of that buffer.  The view is valid until the
    next :meth:`feed` or :meth:`release`: copy what you keep.

    Memory: the output buffer and the buffer that collects a frame split across reads
    come from the thread's :class:`~p2pkit.bufpool.BufferPool` and go back to it as soon
    as they are free (:meth:`release` after the plaintext was used; a split frame once it
    is complete), so an idle connection's decoder holds no buffer and a busy one
    allocates none per read.

    Errors: when a chunk holds good frames followed by a bad one, :meth:`feed` returns
    the plaintext of the good frames and records the error in :attr:`error` (check it
    after using the plaintext); when nothing good came before it, :meth:`feed` raises.
    Either way the decoder is dead afterwards: every later call raises the same error
    (the connection must be closed; a Noise stream cannot resynchronise).
    """

    __slots__ = ("_error", "_good", "_out", "_partial", "_plen")

    def __init__(self, key: bytes, nonce: int = 0) -> None:
        super().__init__(key, nonce)
        # A frame split across reads is collected in a pooled buffer of the largest
        # frame's size, held only while the frame is incomplete: a split costs one copy
        # of its bytes and no allocation.
        self._partial: memoryview | None = None
        self._plen = 0
        self._out: memoryview | None = None  # pooled, held from feed() to release()
        self._error: Exception | None = None
        self._good = 0  # plaintext bytes produced so far by the current feed()

    @property
    def error(self) -> Exception | None:
        """The error that killed the decoder, if any."""
        return self._error

    @property
    def held(self) -> int:
        """Bytes of pooled buffers this decoder holds now (0 between reads once released)."""
        return sum(len(b) for b in (self._out, self._partial) if b is not None)

    @property
    def pending(self) -> int:
        """Bytes of an incomplete frame held back (0 between whole frames)."""
        return self._plen

    def feed(self, data: Buffer) -> memoryview:
        """Consume ``data``; return the plaintext of every frame it completed."""
        if self._error is not None:
            raise self._error
        self._good = 0
        try:
            return self._feed(data)
        except (DecryptError, BadFrameLength, NonceExhausted) as exc:
            self._error = exc
            self._plen = 0
            self._give_partial()
            if not self._good or self._out is None:
                raise
            return self._out[: self._good]

    def release(self) -> None:
        """The plaintext of the last :meth:`feed` is no longer used: free its buffer."""
        out = self._out
        if out is not None:
            self._out = None
            thread_pool().give(out)

    def _give_partial(self) -> None:
        partial = self._partial
        if partial is not None:
            self._partial = None
            thread_pool().give(partial)

    def feed_eof(self) -> None:
        """The ciphertext stream ended: raise if it ended inside a frame."""
        if self._error is not None:
            raise self._error
        if self._plen:
            self._error = BadFrameLength(
                f"stream ended inside a frame ({self._plen} bytes of it received)"
            )
            raise self._error

    def _feed(self, data: Buffer) -> memoryview:
        src = memoryview(data)
        if src.ndim != 1 or src.itemsize != 1:
            src = src.cast("B")
        total = len(src)
        # Plaintext is always shorter than the ciphertext it came from; sizes are powers
        # of two (few distinct sizes for the pool to keep).
        need = self._plen + total
        out = self._out
        if out is None or len(out) < need:
            self.release()
            out = self._out = thread_pool().take(max(_MIN_OUT, 1 << (need - 1).bit_length()))
        o = 0
        pos = 0
        if self._plen:
            pos, o = self._complete_partial(src, out)
            self._good = o
            if self._plen:
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
            rest = total - pos
            partial = self._partial
            if partial is None:
                partial = self._partial = thread_pool().take(HEADER_LEN + MAX_FRAME)
            partial[:rest] = src[pos:]
            self._plen = rest
        return out[:o]

    def _complete_partial(self, src: memoryview, out: memoryview) -> tuple[int, int]:
        """Add bytes from ``src`` to the held-back partial frame; decrypt it if whole.

        Returns (bytes of ``src`` consumed, plaintext bytes written to ``out``).
        """
        partial = self._partial
        assert partial is not None
        plen = self._plen
        pos = 0
        total = len(src)
        if plen < HEADER_LEN:
            take = min(HEADER_LEN - plen, total)
            partial[plen : plen + take] = src[:take]
            plen += take
            pos = take
            self._plen = plen
            if plen < HEADER_LEN:
                return pos, 0
        flen = (partial[0] << 8) | partial[1]
        if flen < TAG_LEN:
            raise BadFrameLength(f"frame of {flen} bytes cannot hold the 16-byte tag")
        take = min(HEADER_LEN + flen - plen, total - pos)
        partial[plen : plen + take] = src[pos : pos + take]
        plen += take
        pos += take
        self._plen = plen
        if plen < HEADER_LEN + flen:
            return pos, 0
        self._plen = 0
        try:
            n = self._decrypt(partial[HEADER_LEN:plen], out[: flen - TAG_LEN])
        finally:
            self._give_partial()
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
