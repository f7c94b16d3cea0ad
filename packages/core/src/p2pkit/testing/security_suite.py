"""Compliance suite for :class:`~p2pkit.abc.SecurityProtocol` implementations.

Every security plugin (ours and third parties') runs the same scenarios, both roles,
over real loopback TCP (and the in-memory channel for the basic handshake).  Use it by
subclassing in a test module and providing one fixture::

    from p2pkit.testing.security_suite import SecuritySuite

    class TestMySecurity(SecuritySuite):
        @pytest.fixture
        def make_security(self):
            def make(private_key, *, handshake_timeout=10.0):
                return MySecurity(private_key, MyOptions(handshake_timeout=handshake_timeout))
            return make

Class attributes tune the suite: ``key_types`` (identity key types the protocol
supports), ``authenticates`` (False for an insecure protocol that cannot prove key
possession, like ``/plaintext/2.0.0``: the impersonation test is skipped),
``negotiates_early_muxer`` (False for a protocol that cannot carry a muxer list in its
handshake, like ``/plaintext/2.0.0``: then both sides must report none).

Scenarios, each in both roles where it applies: handshake over loopback TCP with every
identity key type, over the in-memory channel, without an expected peer id; both sides
agree on the early muxer (and do negotiate one when both offer the same list); a
10,000-chunk echo checked by hash; push mode delivers everything (including bytes
buffered before ``start_push``), nothing while paused and all of it after resuming;
half-close; dialing an
expected peer id of another key (PeerIdMismatch); impersonation with someone else's
public key; handshake timeout against a silent peer; random garbage then EOF; the peer
resetting mid-handshake.  Every failure must be a typed error and leave the connection
closed.

This module is the public entry; the suite is split by theme into sibling modules
(re-exported here): :mod:`p2pkit.testing.security_base` (keys, test doubles, fixtures),
:mod:`p2pkit.testing.security_handshake`, :mod:`p2pkit.testing.security_data` and
:mod:`p2pkit.testing.security_failures` (the scenarios).

Needs pytest and pytest-asyncio (``asyncio_mode = auto``) and the ``p2pkit-tcp``
plugin for the TCP scenarios.
"""

from __future__ import annotations

from p2pkit.testing.security_base import KEY_TYPES as KEY_TYPES
from p2pkit.testing.security_base import MUXERS as MUXERS
from p2pkit.testing.security_base import STEP_TIMEOUT as STEP_TIMEOUT
from p2pkit.testing.security_base import Impostor as Impostor
from p2pkit.testing.security_base import PushCollector as PushCollector
from p2pkit.testing.security_base import SecurityFactory as SecurityFactory
from p2pkit.testing.security_base import _close_all as _close_all
from p2pkit.testing.security_base import _keys as _keys
from p2pkit.testing.security_base import _read_until_eof as _read_until_eof
from p2pkit.testing.security_base import cached_key as cached_key
from p2pkit.testing.security_base import peer_of as peer_of
from p2pkit.testing.security_data import DataScenarios
from p2pkit.testing.security_data import _chunk_size as _chunk_size
from p2pkit.testing.security_failures import FailureScenarios
from p2pkit.testing.security_failures import _drain_until_error as _drain_until_error
from p2pkit.testing.security_handshake import HandshakeScenarios

__all__ = [
    "KEY_TYPES",
    "Impostor",
    "PushCollector",
    "SecurityFactory",
    "SecuritySuite",
    "cached_key",
]


class SecuritySuite(FailureScenarios, DataScenarios, HandshakeScenarios):
    """Scenarios every SecurityProtocol must pass.  Subclass it (name ``Test...``).

    The bases are listed last-first because pytest collects a base class's tests
    before its subclass's: the handshakes run first, then data, then failures."""
