"""What aioquic builds for every connection and an established, idle one need not hold
(memory per idle connection is a headline figure; the QUIC README's "Memory and CPU per
idle connection" gives the measured effect of each step).

:mod:`p2pkit_quic.release` lets go of what the handshake used; :class:`LeanConnection`
(a base of :class:`~p2pkit_quic.machine.Libp2pQuicConnection`) keeps structures that
aioquic's constructor builds eagerly from costing memory until they are used:

* **The frame-handler table** (:class:`FrameHandlers`): aioquic builds, per connection,
  a dict of 33 entries, each a tuple of a bound method and its allowed epochs (5 KB).
  It becomes a dict that binds an entry the first time a frame of that type arrives,
  from a table of method names shared by every connection of the class: an idle
  connection has seen a handful of frame types.  An unknown frame type still raises
  ``KeyError``, which aioquic turns into ``FRAME_ENCODING_ERROR``.
* **Empty queues** (760 bytes each: a deque allocates a 64-slot block even when empty):
  the event queue is a list (the session takes it whole, :meth:`take_events`); the
  DATAGRAM-frame queue (libp2p sends none) and each network path's two PATH_CHALLENGE
  queues are the empty tuple, which aioquic only reads (truth value, ``len``, ``in``)
  until it queues something, and each becomes a deque just before the one method that
  appends to it (:meth:`send_datagram_frame`, :meth:`_handle_path_challenge_frame`,
  :meth:`_write_path_challenge_frame`).
* **Key-logging callbacks**: aioquic gives each of a connection's key pairs four
  ``functools.partial`` callbacks that only write to the QUIC logger (qlog); with none
  configured (ours) they are aioquic's shared no-op.
* **Received packet numbers** as ranges (:class:`~p2pkit_quic.ranges.PacketNumberWindow`,
  aioquic's answers): aioquic's set of the last 128 to 256 numbers grew to ~15 KB in
  a connection's first hour of keep-alive traffic.
* **Tables that grew during activity** (:meth:`LeanConnection.compact`, called by the
  session's timer): a dict keeps the table it grew to however many entries leave, so
  a connection that had 200 streams open held aioquic's and the session's 9 KB stream
  tables, idle, and one with many packets in flight its sent-packet table.  Once
  nearly empty, such a dict is copied into a table of its size.
"""

from __future__ import annotations

import sys
from collections import deque
from typing import TYPE_CHECKING, Any, TypeVar

from aioquic import tls
from aioquic.quic.connection import MAX_LOCAL_CHALLENGES, QuicConnection, QuicNetworkPath
from aioquic.quic.crypto import NoCallback

from p2pkit_quic.ranges import PacketNumberWindow

if TYPE_CHECKING:
    from aioquic._buffer import Buffer
    from aioquic.quic.connection import QuicReceiveContext
    from aioquic.quic.events import QuicEvent
    from aioquic.quic.packet_builder import QuicPacketBuilder

HandlerTable = dict[int, tuple[str, frozenset[Any]]]
"""Frame type -> (name of the connection's handler method, epochs it is allowed in)."""

_HANDLER_TABLES: dict[type, HandlerTable] = {}
"""One table per connection class (a subclass may override handlers)."""

NOTHING_QUEUED: tuple[()] = ()
"""An empty queue that nothing can be appended to (see the module docstring)."""

COMPACT_BELOW = 8
"""A dict of fewer entries than this is copied if its table is over :data:`OVERSIZED`."""
OVERSIZED = 1024
"""Bytes of a dict (``sys.getsizeof``) beyond which a nearly empty one is compacted
(8 entries fit in 400 bytes)."""

_D = TypeVar("_D", bound=dict[Any, Any])


def compacted(table: _D) -> _D:
    """``table``, or a copy of it sized for its entries (see the module docstring)."""
    if len(table) < COMPACT_BELOW and sys.getsizeof(table) > OVERSIZED:
        return type(table)(table)
    return table


class FrameHandlers(dict[int, tuple[Any, frozenset[Any]]]):
    """A connection's frame-handler table, each entry bound on first use."""

    __slots__ = ("_connection", "_table")

    def __init__(self, connection: QuicConnection, table: HandlerTable) -> None:
        super().__init__()
        self._connection = connection
        self._table = table

    def __missing__(self, frame_type: int) -> tuple[Any, frozenset[Any]]:
        name, epochs = self._table[frame_type]  # KeyError: an unknown frame type
        entry = (getattr(self._connection, name), epochs)
        self[frame_type] = entry
        return entry


def _handler_table(cls: type, built: dict[int, tuple[Any, frozenset[Any]]]) -> HandlerTable:
    table = _HANDLER_TABLES.get(cls)
    if table is None:
        table = {}
        for frame_type, (method, epochs) in built.items():
            name = method.__func__.__name__
            # What getattr finds by that name must be the method aioquic bound.
            if getattr(cls, name) is not method.__func__:
                raise RuntimeError(f"aioquic's handler of frame {frame_type:#x} is not {name}")
            table[frame_type] = (name, epochs)
        _HANDLER_TABLES[cls] = table
    return table


def lighten_path(path: QuicNetworkPath) -> None:
    """Replace a path's empty PATH_CHALLENGE queues by :data:`NOTHING_QUEUED`."""
    if type(path.local_challenges) is deque and not path.local_challenges:
        path.local_challenges = NOTHING_QUEUED  # type: ignore[assignment]
    if type(path.remote_challenges) is deque and not path.remote_challenges:
        path.remote_challenges = NOTHING_QUEUED  # type: ignore[assignment]


class LeanConnection(QuicConnection):
    """aioquic's connection, with the lazily built structures of the module docstring."""

    __slots__ = ()

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        built = self._QuicConnection__frame_handlers  # type: ignore[has-type]
        table = _handler_table(type(self), built)
        self._QuicConnection__frame_handlers = FrameHandlers(self, table)
        self._events: list[QuicEvent] = []  # type: ignore[assignment]
        self._datagrams_pending = NOTHING_QUEUED  # type: ignore[assignment]

    def _initialize(self, peer_cid: bytes) -> None:
        super()._initialize(peer_cid)
        for path in self._network_paths:  # the first path: later ones in _add_network_path
            lighten_path(path)
        for space in self._spaces.values():  # (new: nothing received yet)
            space.received_packets = PacketNumberWindow()  # type: ignore[assignment]
        if self._quic_logger is None:  # (set by the constructor only)
            for pair in self._cryptos.values():
                for keys in (pair.recv, pair.send):
                    keys._setup_cb = keys._teardown_cb = NoCallback

    def compact(self) -> None:
        """Give the tables that grew during activity and are nearly empty again a table of
        their size (aioquic reaches them through their attribute every time)."""
        self._streams = compacted(self._streams)
        space = self._spaces.get(tls.Epoch.ONE_RTT)
        if space is not None:
            space.sent_packets = compacted(space.sent_packets)

    # -- events -------------------------------------------------------------------------

    def take_events(self) -> list[QuicEvent]:
        """Every event queued, oldest first (the queue starts anew)."""
        events = self._events
        if events:
            self._events = []
        return events

    def next_event(self) -> QuicEvent | None:
        # As aioquic's (the session uses take_events: a list's pop(0) is O(n)).
        events = self._events
        return events.pop(0) if events else None

    # -- the queues that become deques when first appended to ----------------------------

    def send_datagram_frame(self, data: bytes) -> None:
        if type(self._datagrams_pending) is not deque:
            self._datagrams_pending = deque()
        super().send_datagram_frame(data)

    def _handle_path_challenge_frame(
        self, context: QuicReceiveContext, frame_type: int, buf: Buffer
    ) -> None:
        path = context.network_path
        if type(path.remote_challenges) is not deque:
            path.remote_challenges = deque()
        super()._handle_path_challenge_frame(context, frame_type, buf)

    def _write_path_challenge_frame(
        self, builder: QuicPacketBuilder, network_path: QuicNetworkPath
    ) -> None:
        if type(network_path.local_challenges) is not deque:
            network_path.local_challenges = deque(maxlen=MAX_LOCAL_CHALLENGES)
        super()._write_path_challenge_frame(builder, network_path)

    def _add_network_path(self, network_path: QuicNetworkPath) -> None:
        super()._add_network_path(network_path)
        lighten_path(network_path)
