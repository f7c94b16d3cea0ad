"""p2pkit-noise: the libp2p Noise security protocol (``/noise``) for p2pkit.

Public API:

* :class:`NoiseSecurity` -- the :class:`~p2pkit.abc.SecurityProtocol`;
* :class:`NoiseOptions` -- its typed options;
* :class:`NoiseConnection` -- the :class:`~p2pkit.abc.SecureConnection` it returns;
* the sans-IO cores :class:`NoiseHandshake`, :class:`FrameEncoder`, :class:`FrameDecoder`
  and the payload codec :class:`HandshakePayload` / :class:`NoiseExtensions`;
* the error subclasses of :mod:`p2pkit_noise.errors`.

Every public name is imported on first use (PEP 562 ``__getattr__``), so that
importing the package, or its entry-point module :mod:`p2pkit_noise.plugin`, loads no
implementation module (no cipher, no OpenSSL, no asyncio shell).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from p2pkit.lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "PROTOCOL_ID": "p2pkit_noise._ids",
    "NoiseConnection": "p2pkit_noise.connection",
    "BadFrameLength": "p2pkit_noise.errors",
    "DecryptError": "p2pkit_noise.errors",
    "HandshakeTruncated": "p2pkit_noise.errors",
    "InvalidHandshakePayload": "p2pkit_noise.errors",
    "NoiseHandshakeError": "p2pkit_noise.errors",
    "NoiseTransportError": "p2pkit_noise.errors",
    "NoMuxerOverlap": "p2pkit_noise.errors",
    "NonceExhausted": "p2pkit_noise.errors",
    "MAX_FRAME": "p2pkit_noise.framing",
    "MAX_PLAINTEXT": "p2pkit_noise.framing",
    "FrameDecoder": "p2pkit_noise.framing",
    "FrameEncoder": "p2pkit_noise.framing",
    "HandshakeCompleted": "p2pkit_noise.handshake",
    "HandshakeResult": "p2pkit_noise.handshake",
    "NoiseHandshake": "p2pkit_noise.handshake",
    "select_muxer": "p2pkit_noise.handshake",
    "NoiseOptions": "p2pkit_noise.options",
    "HandshakePayload": "p2pkit_noise.payload",
    "NoiseExtensions": "p2pkit_noise.payload",
    "NoiseSecurity": "p2pkit_noise.security",
}

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

if TYPE_CHECKING:
    from p2pkit_noise._ids import PROTOCOL_ID
    from p2pkit_noise.connection import NoiseConnection
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
    from p2pkit_noise.framing import (
        MAX_FRAME,
        MAX_PLAINTEXT,
        FrameDecoder,
        FrameEncoder,
    )
    from p2pkit_noise.handshake import (
        HandshakeResult,
        NoiseHandshake,
        select_muxer,
    )
    from p2pkit_noise.options import NoiseOptions
    from p2pkit_noise.payload import (
        HandshakePayload,
        NoiseExtensions,
    )
    from p2pkit_noise.security import NoiseSecurity


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
