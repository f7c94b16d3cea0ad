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


class YamuxControlFlood(YamuxProtocolError):
    """The peer kept sending control frames (pings, SYNs) while not reading our replies.

    ``reason`` is ``"control-flood"``: more replies due at once than the session
    queues (``session.MAX_QUEUED_REPLIES``), or more control frames while our writes
    were blocked than ``YamuxOptions.max_blocked_control_frames``.
    """

    def __init__(self, frames: int, *, in_one_batch: bool = False) -> None:
        self.frames = frames
        if in_one_batch:
            message = f"more than {frames} replies due for one batch of received bytes"
        else:
            message = f"{frames} control frames received while the peer did not read ours"
        super().__init__("control-flood", message)
