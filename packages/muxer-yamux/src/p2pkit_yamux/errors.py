"""Yamux-specific error types (all subclasses of the shared p2pkit hierarchy)."""

from __future__ import annotations

from p2pkit.errors import MuxerError


class YamuxProtocolError(MuxerError):
    """The peer broke the yamux protocol; the session answered GoAway(1) and ended.

    ``reason`` is a short machine-friendly tag (``"bad-version"``, ``"window-overrun"``,
    ...), the message says what happened in words.
    """

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(f"yamux protocol error ({reason}): {message}")


class YamuxGoAway(MuxerError):
    """The peer ended the session with a GoAway carrying an error code."""

    def __init__(self, code: int) -> None:
        self.code = code
        names = {1: "protocol error", 2: "internal error"}
        super().__init__(f"peer sent yamux GoAway({code}: {names.get(code, 'unknown code')})")
