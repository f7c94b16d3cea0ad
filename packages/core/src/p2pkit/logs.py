"""Logging conventions an operator can filter on, shared by the core and every plugin.

* **One logger per component**, all under ``p2pkit``: ``p2pkit.swarm``,
  ``p2pkit.dialer``, ``p2pkit.rcmgr``, ``p2pkit.identify``, ``p2pkit.tcp``,
  ``p2pkit.noise``, ``p2pkit.yamux``... (:func:`get_logger`).  Core modules use
  ``logging.getLogger(__name__)``, which is the same name; plugin packages, whose
  modules live outside the ``p2pkit`` package, name their component here, so
  ``logging.getLogger("p2pkit")`` (or ``--log-level``) reaches every line.
* **Peer ids are shortened one way** (:func:`short_peer`: ``12D3KooW…abcdef``) in
  messages; the full id, when a line is about one peer, goes in the record's ``peer``
  attribute (``extra=peer_extra(peer)``), which the JSON format prints as a field.
* **Nothing logs per packet or frame.**  Lines a remote peer can trigger again and again
  (a refused connection, a failed handshake, a bad stream) go through a
  :class:`RepeatLimiter`: the first line of a key in a window is written, repeats are
  counted, and the next line written for that key says how many were not.

This module imports only :mod:`logging` and :mod:`time`; the JSON formatter and the
command-line set-up are in :mod:`p2pkit.logfmt`, loaded only by the CLI.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Hashable
from typing import Any

ROOT = "p2pkit"
#: Seconds within which repeats of one message key are collapsed (default).
REPEAT_WINDOW = 10.0
#: Keys a limiter remembers at most: a peer that invents keys cannot grow it.
MAX_KEYS = 1024


def get_logger(component: str) -> logging.Logger:
    """The logger of one component: ``p2pkit.<component>``."""
    return logging.getLogger(f"{ROOT}.{component}")


def short_peer(peer: object) -> str:
    """A peer id as log messages print it: the first 8 and last 6 characters
    (``12D3KooW…abcdef``), enough to tell peers apart and to grep for; short ids are
    printed whole."""
    text = str(peer)
    return text if len(text) <= 16 else f"{text[:8]}\u2026{text[-6:]}"


def peer_extra(peer: object) -> dict[str, str]:
    """``extra=`` for a line about one peer: the full id as the record's ``peer``."""
    return {"peer": str(peer)}


class RepeatLimiter:
    """Collapses repeats of one message key within a window of ``window`` seconds.

    The first ``burst`` lines of a key in a window are written; later ones are only
    counted, and the first line written for that key once the window has passed says how
    many were not.  :meth:`allow` makes that decision, :meth:`log` also writes the line.
    At most ``max_keys`` keys are remembered (the oldest window is forgotten first), so
    the limiter's memory is bounded whatever the keys.
    """

    def __init__(
        self,
        window: float = REPEAT_WINDOW,
        *,
        burst: int = 1,
        max_keys: int = MAX_KEYS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.window = window
        self.burst = burst
        self.max_keys = max_keys
        self._clock = clock
        # key -> [window start, lines written in it, lines held back in it]
        self._seen: dict[Hashable, list[float]] = {}

    def allow(self, key: Hashable) -> int | None:
        """None if ``key`` is being suppressed (this one is counted); otherwise the number
        suppressed before this line and not reported yet (0 or more)."""
        now = self._clock()
        state = self._seen.get(key)
        if state is not None and now - state[0] < self.window:
            if state[1] < self.burst:
                state[1] += 1
                return 0
            state[2] += 1
            return None
        held = int(state[2]) if state is not None else 0
        self._seen.pop(key, None)  # re-insert: the dict's order is the age order
        if len(self._seen) >= self.max_keys:
            del self._seen[next(iter(self._seen))]
        self._seen[key] = [now, 1, 0]
        return held

    def log(
        self,
        logger: logging.Logger,
        level: int,
        key: Hashable,
        msg: str,
        *args: object,
        extra: dict[str, Any] | None = None,
    ) -> bool:
        """Write ``msg % args`` at ``level`` unless ``key`` is being suppressed; a line
        written after suppressed ones ends with their count (and carries it as the
        record's ``repeated`` attribute).  True if a line was written."""
        if not logger.isEnabledFor(level):
            return False
        held = self.allow(key)
        if held is None:
            return False
        if held:
            msg, args = _with_count(msg % args if args else msg, held, self.window), ()
            extra = {**(extra or {}), "repeated": held}
        logger.log(level, msg, *args, extra=extra, stacklevel=2)  # the caller's line
        return True


def _with_count(text: str, held: int, window: float) -> str:
    # Formatted eagerly and passed with no arguments, so a "%" in ``text`` is kept as is.
    return f"{text} ({held} more like this within {window:g}s)"


class RepeatFilter(logging.Filter):
    """A handler filter that collapses repeats of one message *template* (logger name
    plus the unformatted message) whatever the arguments: more than ``burst`` lines of
    one template within ``window`` seconds are held back and counted.  The last line of
    defence the CLI installs, for lines a call site did not rate-limit itself; ``burst``
    keeps ordinary traffic (one line per connection at a normal rate) intact."""

    def __init__(
        self, window: float = REPEAT_WINDOW, *, burst: int = 20, max_keys: int = MAX_KEYS
    ) -> None:
        super().__init__()
        self.limiter = RepeatLimiter(window, burst=burst, max_keys=max_keys)

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "repeated", None) is not None:
            return True  # already collapsed at the call site
        held = self.limiter.allow((record.name, str(record.msg)))
        if held is None:
            return False
        if held:
            record.msg = _with_count(record.getMessage(), held, self.limiter.window)
            record.args = ()
            record.repeated = held
        return True


__all__ = [
    "MAX_KEYS",
    "REPEAT_WINDOW",
    "ROOT",
    "RepeatFilter",
    "RepeatLimiter",
    "get_logger",
    "peer_extra",
    "short_peer",
]
