"""The errors of a peer that breaks mplex, each a :class:`~p2pkit.errors.MuxerError`.

``MplexSession.receive_data`` raises them, then raises the same error on every later
call (the convention of ``docs/sansio.md``), and the shell aborts the connection with
it (``MplexConnection.ended_by``).  The shell also aborts with :class:`MplexControlFlood`
a peer that keeps making us reply while it does not read.
"""

from __future__ import annotations

from p2pkit.errors import MessageTooLarge, MuxerError

__all__ = ["MplexControlFlood", "MplexFrameTooLarge", "MplexProtocolError"]


class MplexProtocolError(MuxerError):
    """The remote violated mplex; the whole connection must be closed."""


class MplexFrameTooLarge(MplexProtocolError, MessageTooLarge):
    """An incoming frame announced more than ``max_message_size`` bytes."""


class MplexControlFlood(MplexProtocolError):
    """The peer kept making us reply (e.g. NewStream beyond ``max_streams``, each answered
    with a Reset) while not reading our replies (``max_blocked_control_frames``)."""
