"""Two honest sans-IO sessions driven by random operations never disagree.

Hypothesis picks opens, sends, reads, half-closes, resets and how the byte stream is cut
into chunks; the wire between the two sessions is lossless and ordered.  Invariants:
no protocol error, every stream's received bytes are a prefix of what was sent (equal
once FIN arrived), and send windows never go negative.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from p2pkit_yamux import events as ev
from p2pkit_yamux.options import YamuxOptions
from p2pkit_yamux.session import YamuxSession


@dataclass
class Side:
    session: YamuxSession
    wire_out: bytearray = field(default_factory=bytearray)
    sent: dict[int, bytearray] = field(default_factory=dict)
    received: dict[int, bytearray] = field(default_factory=dict)
    unread: dict[int, int] = field(default_factory=dict)
    eof: set[int] = field(default_factory=set)
    reset: set[int] = field(default_factory=set)


ops = st.lists(
    st.tuples(
        st.sampled_from(["open", "send", "read", "close", "reset", "deliver", "ping"]),
        st.booleans(),  # which side
        st.integers(0, 7),  # which stream (index into the side's streams)
        st.integers(1, 300_000),  # size
    ),
    max_size=60,
)


def deliver(src: Side, dst: Side, n: int, now: float) -> None:
    chunk = bytes(src.wire_out[:n])
    del src.wire_out[:n]
    for e in dst.session.receive_data(chunk, now):
        assert not isinstance(e, ev.ConnectionTerminated), e
        if isinstance(e, ev.StreamOpened):
            dst.wire_out += dst.session.accept(e.stream_id)
        elif isinstance(e, ev.DataReceived):
            dst.received.setdefault(e.stream_id, bytearray()).extend(e.data)
            dst.unread[e.stream_id] = dst.unread.get(e.stream_id, 0) + len(e.data)
        elif isinstance(e, ev.StreamEOF):
            dst.eof.add(e.stream_id)
        elif isinstance(e, ev.StreamReset):
            dst.reset.add(e.stream_id)
    dst.wire_out += dst.session.data_to_send()


@settings(max_examples=150, deadline=None)
@given(ops)
def test_random_operations_keep_sessions_consistent(
    script: list[tuple[str, bool, int, int]],
) -> None:
    opts = YamuxOptions(max_stream_window=1 << 20)
    a = Side(YamuxSession(is_initiator=True, options=opts))
    b = Side(YamuxSession(is_initiator=False, options=opts))
    a.session.rtt = b.session.rtt = 0.5
    now = 0.0
    for op, which, idx, size in script:
        now += 0.1
        me, other = (a, b) if which else (b, a)
        ids = sorted(me.session.streams)
        sid = ids[idx % len(ids)] if ids else None
        if op == "open" and me.session.can_open:
            new, frame = me.session.open_stream(now)
            me.wire_out += frame
            me.sent[new] = bytearray()
        elif op == "send" and sid is not None and me.session.send_window(sid):
            payload = bytes([sid % 251]) * size
            n, parts = me.session.send_data(sid, payload)
            assert me.session.send_window(sid) >= 0
            me.wire_out += b"".join(bytes(p) for p in parts)
            me.sent.setdefault(sid, bytearray()).extend(payload[:n])
        elif op == "read" and sid is not None and me.unread.get(sid):
            n = min(size, me.unread[sid])
            me.unread[sid] -= n
            me.wire_out += me.session.consumed(sid, n, now)
        elif op == "close" and sid is not None:
            me.wire_out += me.session.close_stream(sid)
        elif op == "reset" and sid is not None:
            me.wire_out += me.session.reset_stream(sid)
            me.reset.add(sid)
        elif op == "ping":
            me.wire_out += me.session.ping(now)[1]
        elif op == "deliver":
            deliver(me, other, size, now)
    # flush everything both ways
    for _ in range(4):
        deliver(a, b, len(a.wire_out), now)
        deliver(b, a, len(b.wire_out), now)
    for me, other in ((a, b), (b, a)):
        for sid, got in other.received.items():
            sent = me.sent.get(sid, bytearray())
            assert sent.startswith(got)
            if sid in other.eof:  # FIN comes after all data: nothing may be missing
                assert got == sent
