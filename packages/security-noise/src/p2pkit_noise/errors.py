"""Noise-specific subclasses of the p2pkit error hierarchy.

Callers catch the generic classes (:class:`~p2pkit.errors.HandshakeError`,
:class:`~p2pkit.errors.ProtocolError`); these subclasses only say more precisely what
went wrong, for logs and tests.
"""

from __future__ import annotations

from p2pkit.errors import HandshakeError, ProtocolError


class NoiseHandshakeError(HandshakeError):
    """The Noise handshake failed: bad message, bad payload, truncated, wrong state."""


class HandshakeTruncated(NoiseHandshakeError):
    """The peer closed the connection before the handshake completed."""


class InvalidHandshakePayload(NoiseHandshakeError):
    """The ``NoiseHandshakePayload`` protobuf is malformed, missing a field, or too large."""


class NoMuxerOverlap(NoiseHandshakeError):
    """Early muxer negotiation: both peers offered muxers and none is common."""

    def __init__(self, ours: list[str], theirs: list[str]) -> None:
        self.ours = ours
        self.theirs = theirs
        super().__init__(f"no common stream muxer: ours {ours!r}, theirs {theirs!r}")


class NoiseTransportError(ProtocolError):
    """A transport message (after the handshake) was invalid."""


class DecryptError(NoiseTransportError):
    """A transport frame failed authentication (tampered, reordered or wrong key)."""


class BadFrameLength(NoiseTransportError):
    """A frame is too short to hold the 16-byte tag, or the stream ended mid-frame."""


class NonceExhausted(NoiseTransportError):
    """2**64 - 1 messages were sent or received with one key: the connection must end."""
