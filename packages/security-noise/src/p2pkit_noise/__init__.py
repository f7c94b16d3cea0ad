"""p2pkit-noise: the libp2p Noise security protocol (``/noise``) for p2pkit.

Public API:

* :class:`NoiseSecurity` -- the :class:`~p2pkit.abc.SecurityProtocol`;
* :class:`NoiseOptions` -- its typed options;
* :class:`NoiseConnection` -- the :class:`~p2pkit.abc.SecureConnection` it returns;
* the sans-IO cores :class:`NoiseHandshake`, :class:`FrameEncoder`, :class:`FrameDecoder`
  and the payload codec :class:`HandshakePayload` / :class:`NoiseExtensions`;
* the error subclasses of :mod:`p2pkit_noise.errors`.
"""

from p2pkit_noise.connection import PROTOCOL_ID, NoiseConnection
from p2pkit_noise.errors import (
    BadFrameLength,
    DecryptError,
    HandshakeTruncated,
    InvalidHandshakePayload,
    NoiseHandshakeError,
    NoiseTransportError,
    NoMuxerOverlap,
    NonceExhausted,
)
from p2pkit_noise.framing import MAX_FRAME, MAX_PLAINTEXT, FrameDecoder, FrameEncoder
from p2pkit_noise.handshake import (
    HandshakeCompleted,
    HandshakeResult,
    NoiseHandshake,
    select_muxer,
)
from p2pkit_noise.options import NoiseOptions
from p2pkit_noise.payload import HandshakePayload, NoiseExtensions
from p2pkit_noise.security import NoiseSecurity

__all__ = [
    "MAX_FRAME",
    "MAX_PLAINTEXT",
    "PROTOCOL_ID",
    "BadFrameLength",
    "DecryptError",
    "FrameDecoder",
    "FrameEncoder",
    "HandshakeCompleted",
    "HandshakePayload",
    "HandshakeResult",
    "HandshakeTruncated",
    "InvalidHandshakePayload",
    "NoMuxerOverlap",
    "NoiseConnection",
    "NoiseExtensions",
    "NoiseHandshake",
    "NoiseHandshakeError",
    "NoiseOptions",
    "NoiseSecurity",
    "NoiseTransportError",
    "NonceExhausted",
    "select_muxer",
]
