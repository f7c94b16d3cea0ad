"""Two sans-IO sessions driven by random operations, wires delivered in random splits:
every stream that was not reset carries exactly the bytes sent, then EOF if closed."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from p2pkit.errors import StreamClosed
from p2pkit_mplex import (
    DataReceived,
    MplexOptions,
    MplexSession,
    StreamEnded,
    StreamKey,
    StreamOpened,
    StreamReset,
)

# A fast reader (consumes every chunk at once) never trips the buffer bound.
# Tiny limits so that writes are split and the bound is exercised.  Deliveries are at
# most 200 bytes, so a reader that consumes after every delivery stays under 256.
OPTS = MplexOptions(max_message_size=16, max_stream_buffer=256, slow_reader_timeout=0)


class Side:
    def __init__(self, is_initiator: bool) -> None:
        self.session = MplexSession(is_initiator=is_initiator, options=OPTS)
        self.wire = bytearray()  # bytes to the other side, not yet delivered
        self.sent: dict[StreamKey, bytearray] = {}
        self.got: dict[StreamKey, bytearray] = {}
        self.ended: set[StreamKey] = set()
        self.reset: set[StreamKey] = set()  # reset by either side (as seen here)
        self.closed: set[StreamKey] = set()
        self.opened: list[StreamKey] = []


def mirror(key: StreamKey) -> StreamKey:
    return StreamKey(key.id, not key.opened_by_us)


def deliver(src: Side, dst: Side, n: int) -> None:
    chunk = bytes(src.wire[:n])
    del src.wire[:n]
    for ev in dst.session.receive_data(chunk):
        if isinstance(ev, StreamOpened):
            dst.opened.append(ev.key)
        elif isinstance(ev, DataReceived):
            assert ev.key not in dst.ended
            dst.got.setdefault(ev.key, bytearray()).extend(ev.data)
            dst.session.consumed(ev.key, len(ev.data))  # a fast reader
        elif isinstance(ev, StreamEnded):
            assert ev.key not in dst.ended
            dst.ended.add(ev.key)
        elif isinstance(ev, StreamReset):
            assert ev.by_remote, ev.reason
            dst.reset.add(ev.key)
    dst.wire += dst.session.data_to_send()


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_random_operations(data: st.DataObject) -> None:
    a, b = Side(True), Side(False)
    sides = (a, b)
    for _ in range(data.draw(st.integers(1, 60))):
        i = data.draw(st.integers(0, 1))
        me, peer = sides[i], sides[1 - i]
        op = data.draw(st.sampled_from(["open", "send", "send", "close", "reset", "deliver"]))
        keys = [k for k in me.opened if k not in me.reset]
        if op == "open":
            key, frame = me.session.open_stream()
            me.opened.append(key)
            me.wire += frame
        elif op == "deliver" or not keys:
            deliver(me, peer, data.draw(st.integers(0, 200)))
        else:
            key = data.draw(st.sampled_from(keys))
            if op == "send":
                size = data.draw(st.integers(1, 200))
                payload = bytes((j * 7 + size) & 0xFF for j in range(size))
                try:
                    me.wire += me.session.send_data(key, payload)
                except StreamClosed:
                    assert key in me.closed or not me.session.has_stream(key)
                    continue
                me.sent.setdefault(key, bytearray()).extend(payload)
            elif op == "close":
                me.wire += me.session.close_stream(key)
                me.closed.add(key)
            else:
                me.wire += me.session.reset_stream(key)
                me.reset.add(key)
    while a.wire or b.wire:  # flush both ways (resets may answer data)
        deliver(a, b, 200)
        deliver(b, a, 200)
    for me, peer in ((a, b), (b, a)):
        for key in me.opened:
            theirs = mirror(key)
            if key in me.reset or theirs in peer.reset:
                continue
            assert bytes(peer.got.get(theirs, b"")) == bytes(me.sent.get(key, b""))
            assert (theirs in peer.ended) == (key in me.closed)
            both_closed = key in me.closed and theirs in peer.closed
            assert me.session.has_stream(key) != both_closed
