"""The typed exception hierarchy of p2pkit.

Every failure a peer, a plugin or a user can cause maps to one of these, so that
callers can tell "the peer misbehaved" from "we timed out" from "not installed"
without parsing messages.  All derive from :class:`P2PError`.
"""

from __future__ import annotations


class P2PError(Exception):
    """Base class of every p2pkit error."""


# -- configuration and plugins -------------------------------------------------


class ConfigError(P2PError, ValueError):
    """The configuration is invalid (raised before any socket is opened)."""


class PluginError(P2PError):
    """A plugin could not be found or loaded."""


class PluginNotFound(PluginError, LookupError):
    """No installed plugin has that name; the message names the package to install."""

    def __init__(self, kind: str, name: str, installed: list[str], package: str | None = None):
        self.kind = kind
        self.name = name
        self.installed = installed
        self.package = package
        hint = f"; install it with: pip install {package}" if package else ""
        have = ", ".join(installed) if installed else "none"
        super().__init__(f"no {kind} plugin named {name!r} is installed (installed: {have}){hint}")


class PluginLoadError(PluginError):
    """An installed plugin raised while loading; the message names the package."""


# -- protocol-level ---------------------------------------------------------------


class ProtocolError(P2PError):
    """The remote peer violated a wire protocol (bad frame, bad state transition)."""


class MessageTooLarge(ProtocolError):
    """A length-prefixed message exceeded the limit this parser accepts."""


class NegotiationError(ProtocolError):
    """multistream-select failed."""


class ProtocolNotSupported(NegotiationError):
    """None of the proposed protocols was accepted by the peer."""

    def __init__(self, proposed: list[str]):
        self.proposed = proposed
        super().__init__(f"peer supports none of {proposed!r}")


class HandshakeError(P2PError):
    """A security handshake failed (bad signature, bad key, truncated, ...)."""


class HandshakeTimeout(HandshakeError, TimeoutError):
    """A handshake or negotiation did not complete in time."""


class NegotiationTimeout(NegotiationError, HandshakeTimeout):
    """multistream-select did not complete in time (a ``HandshakeTimeout`` too, as it
    was raised before this type existed, so existing handlers still catch it)."""


class PeerIdMismatch(HandshakeError):
    """The remote proved an identity other than the one we dialed."""

    def __init__(self, expected: object, actual: object):
        self.expected = expected
        self.actual = actual
        super().__init__(f"peer id mismatch: expected {expected}, got {actual}")


class InvalidSignature(HandshakeError):
    """A signature over handshake material did not verify."""


# -- identities -------------------------------------------------------------------


class InvalidKey(P2PError, ValueError):
    """A key or signature encoding could not be decoded."""


class UnsupportedKeyType(InvalidKey):
    """The key type is not one p2pkit implements (or not allowed here)."""


class InvalidPeerId(P2PError, ValueError):
    """A peer id string or byte form is malformed."""


# -- transports and connections ---------------------------------------------------


class TransportError(P2PError):
    """A transport-level failure (socket, address)."""


class AddressError(TransportError, ValueError):
    """A multiaddr is malformed or cannot be used by any installed transport."""


class DialError(TransportError):
    """Dialing failed.  ``errors`` lists (address, exception) for each address tried."""

    def __init__(self, message: str, errors: list[tuple[object, BaseException]] | None = None):
        self.errors = errors or []
        if self.errors:
            detail = "; ".join(f"{a}: {type(e).__name__}: {e}" for a, e in self.errors)
            message = f"{message} ({detail})"
        super().__init__(message)


class DialToSelf(DialError):
    """A dial named, or reached, this host's own peer id (go-libp2p ``ErrDialToSelf``,
    js-libp2p "tried to dial self"): a node never connects to itself."""


class ConnectionClosed(P2PError, ConnectionError):
    """The connection (or session) is closed; no more streams or bytes."""


class StreamError(P2PError):
    """Base of per-stream failures."""


class StreamReset(StreamError, ConnectionResetError):
    """The stream was reset (by us or by the peer); buffered data was dropped."""


class StreamClosed(StreamError):
    """Write after our half-close, or an operation on a fully closed stream."""


class MuxerError(ProtocolError):
    """The muxer session hit a protocol error and was closed."""


class ResourceLimitExceeded(P2PError):
    """A configured limit refused a new connection or stream; existing ones are untouched."""


class StreamResetByLimit(StreamReset, ResourceLimitExceeded):
    """A stream reset because a resource limit refused memory for data the peer sent on
    it (the peer was sent a reset too).  ``__cause__`` is the refusal, e.g.
    :class:`~p2pkit.limits.LimitExceeded`; the connection and its other streams go on."""


class GatedError(P2PError):
    """The connection gater denied this connection at one of its checkpoints."""
