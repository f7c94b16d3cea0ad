"""What a QUIC connection lets go of once its handshake is over (memory per idle
connection is a headline figure).

aioquic keeps everything the handshake used for the connection's whole life.  Two
moments free it, both called by :class:`~p2pkit_quic.machine.Libp2pQuicConnection`:

* :func:`after_completion` (the handshake is complete): the three 16 KiB TLS output
  buffers shrink to :data:`POST_HANDSHAKE_CRYPTO_BUFFER` bytes (TLS writes nothing more
  in QUIC: no KeyUpdate, and we issue no session tickets), and the TLS context drops
  the ephemeral key-share keys and the peer's parsed certificate (OpenSSL objects).
  With no session-ticket callback (ours: we neither issue nor store tickets), the TLS
  context has nothing left to derive: after the handshake it only parses a
  NewSessionTicket from the server (and drops it) or refuses any other message, and
  aioquic reads its state and what was negotiated.  So it is replaced by a context of
  the same class holding only that (:data:`TLS_AFTER_HANDSHAKE`: aioquic's own
  methods go on working on it); its key schedule (a running transcript hash, an
  OpenSSL context), the handshake traffic and Finished secrets, both randoms, the
  extensions sent and received, the lists of offered algorithms, our certificate
  check and a 46-entry attribute table (1.6 KB) go.  An attribute read that this
  missed would raise and abort that connection, not misbehave.  The peer's list of
  QUIC versions goes too (read once, when ALPN is negotiated).
* :func:`after_confirmation` (the handshake is confirmed, the Initial and Handshake
  packet spaces discarded, RFC 9001 4.9): their key pairs are replaced by one shared
  pair that holds no keys, their CRYPTO streams and TLS buffers are dropped, and the
  packet spaces themselves (received-packet window, ACK ranges, sent packets: ~1.2 KB
  a connection) are replaced by one shared, read-only discarded space
  (:data:`DISCARDED_SPACE`).  A late Initial or Handshake packet from the peer then
  fails to decrypt and is dropped, as it was before (aioquic tears those keys down at
  the discard); nothing writes to those epochs any more: aioquic only reads a
  discarded space (its expected packet number, before decrypting; its empty timers
  and sent packets, in loss recovery).  Were a later aioquic to write to one, the
  write raises and that connection is aborted: one connection's state never leaks
  into another's.  Called between datagrams, never while a packet of those epochs is
  being processed.

Measured with ``benchmarks/idle_memory.py --listen /ip4/127.0.0.1/udp/0/quic-v1``:
an idle connection cost the listener 60 KiB before these steps, 28.5 KiB with them and
:mod:`p2pkit_quic.lean`; see the README for what each step saves.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import TYPE_CHECKING

from aioquic import tls
from aioquic._buffer import Buffer
from aioquic.quic.crypto import CryptoPair
from aioquic.quic.recovery import QuicPacketSpace

if TYPE_CHECKING:
    from aioquic.quic.connection import QuicConnection

POST_HANDSHAKE_CRYPTO_BUFFER = 256
"""Bytes of TLS output a connection can take once its handshake is complete."""

NO_KEYS = CryptoPair()
"""The key pair of every discarded epoch: never set up, so never valid (shared: it has
no state to change, and its teardown callbacks do nothing)."""



class _DiscardedSpace(QuicPacketSpace):
    """A discarded packet space that refuses every change (see :data:`DISCARDED_SPACE`)."""

    def __init__(self) -> None:
        super().__init__()
        self.discarded = True
        # Immutable containers: an add, a subtraction or a store raises.
        self.ack_queue = ()  # type: ignore[assignment]
        self.received_packets = frozenset()  # type: ignore[assignment]
        self.sent_packets = MappingProxyType({})  # type: ignore[assignment]
        object.__setattr__(self, "_frozen", True)

    def __setattr__(self, name: str, value: object) -> None:
        if getattr(self, "_frozen", False):
            raise AttributeError(f"the shared discarded packet space is read-only ({name})")
        super().__setattr__(name, value)


DISCARDED_SPACE: QuicPacketSpace = _DiscardedSpace()
"""The packet space of every discarded epoch once the handshake is confirmed: no
timers, no packets in flight, nothing to acknowledge (as aioquic leaves a space it
discards), and read-only."""

_DISCARDABLE = (tls.Epoch.INITIAL, tls.Epoch.HANDSHAKE)
_POST_HANDSHAKE = frozenset({tls.State.CLIENT_POST_HANDSHAKE, tls.State.SERVER_POST_HANDSHAKE})
TLS_AFTER_HANDSHAKE = (
    "state",
    "_receive_buffer",  # (a message split over CRYPTO frames)
    "new_session_ticket_cb",
    "get_session_ticket_cb",
    "update_traffic_key_cb",
    "alpn_negotiated",
    "early_data_accepted",
    "_session_resumed",
    "session_ticket",
    "_is_client",
    "_Context__logger",
)
"""What a TLS context without a session-ticket callback still reads after the handshake
(``handle_message`` in a POST_HANDSHAKE state), and what aioquic reads of it."""
_NONE_AFTER_HANDSHAKE = ("key_schedule", "client_random", "received_extensions", "alpn_cb")
"""Public attributes kept, as None, for any reader (aioquic reads them only before)."""


def after_completion(quic: QuicConnection) -> None:
    """See the module docstring.  A TLS buffer still holding bytes is left as it is."""
    buffers = quic._crypto_buffers
    for epoch, buf in buffers.items():
        if buf.capacity > POST_HANDSHAKE_CRYPTO_BUFFER and buf.tell() == 0:
            buffers[epoch] = Buffer(capacity=POST_HANDSHAKE_CRYPTO_BUFFER)
    context = quic.tls
    if context.state in _POST_HANDSHAKE and context.new_session_ticket_cb is None:
        state = vars(context)
        after = tls.Context.__new__(type(context))  # (aioquic's class, not initialized)
        vars(after).update({name: state[name] for name in TLS_AFTER_HANDSHAKE if name in state})
        vars(after).update(dict.fromkeys(_NONE_AFTER_HANDSHAKE))
        after.handshake_extensions = []
        quic.tls = after
    else:  # (not ours): at least the key-share keys and the peer's certificate go
        context._x25519_private_key = None
        context._ec_private_keys = []
        context._peer_certificate = None
        context._certificate_request = None
    quic._remote_version_information = None


def after_confirmation(quic: QuicConnection) -> None:
    """See the module docstring: only epochs aioquic has discarded are touched."""
    for epoch in _DISCARDABLE:
        space = quic._spaces.get(epoch)
        if space is None or not space.discarded:
            continue
        quic._cryptos[epoch] = NO_KEYS
        quic._crypto_streams.pop(epoch, None)
        quic._crypto_buffers.pop(epoch, None)
        if epoch == tls.Epoch.INITIAL:
            for version in quic._cryptos_initial:
                quic._cryptos_initial[version] = NO_KEYS
        if space is not DISCARDED_SPACE and _settled(space):
            quic._spaces[epoch] = DISCARDED_SPACE
            loss = quic._loss
            loss.spaces = [DISCARDED_SPACE if s is space else s for s in loss.spaces]
    zero_rtt = quic._cryptos.get(tls.Epoch.ZERO_RTT)
    if zero_rtt is not None and not zero_rtt.recv.is_valid() and not zero_rtt.send.is_valid():
        quic._cryptos[tls.Epoch.ZERO_RTT] = NO_KEYS


def _settled(space: QuicPacketSpace) -> bool:
    """As aioquic leaves a space it discards: nothing in flight, no timer, no ACK due."""
    return (
        not space.sent_packets
        and space.ack_at is None
        and space.loss_time is None
        and not space.ack_eliciting_in_flight
    )
