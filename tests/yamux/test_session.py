"""Sans-IO yamux session: spec byte vectors, state machine, errors, flow control."""

from __future__ import annotations

import struct
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pkit.abc import Buffer
from p2pkit.errors import ConnectionClosed, MuxerError, ResourceLimitExceeded, StreamClosed
from p2pkit_yamux import frames as fr
from p2pkit_yamux.errors import YamuxControlFlood, YamuxGoAway, YamuxProtocolError
from p2pkit_yamux.events import (
    ConnectionTerminated,
    DataReceived,
    GoAwayReceived,
    PingReceived,
    PongReceived,
    StreamAcked,
    StreamEOF,
    StreamOpened,
    StreamReset,
    WindowUpdated,
)
from p2pkit_yamux.options import YamuxOptions
from p2pkit_yamux.session import MAX_QUEUED_REPLIES, YamuxSession

KiB = 1024


def hdr(ftype: int, flags: int, sid: int, length: int) -> bytes:
    return struct.pack(">BBHII", 0, ftype, flags, sid, length)


def pair(**kw: object) -> tuple[YamuxSession, YamuxSession]:
    opts = YamuxOptions(**kw)  # type: ignore[arg-type]
    return YamuxSession(is_initiator=True, options=opts), YamuxSession(
        is_initiator=False, options=opts
    )


def joined(parts: Sequence[Buffer]) -> bytes:
    return b"".join(bytes(p) for p in parts)


def raised(session: YamuxSession, wire: bytes) -> YamuxProtocolError:
    """Feed ``wire``: it must raise a YamuxProtocolError (a MuxerError), kept on the session."""
    with pytest.raises(YamuxProtocolError) as info:
        session.receive_data(wire)
    assert isinstance(info.value, MuxerError)
    assert session.error is info.value and session.terminated is not None
    return info.value


# -- byte vectors --------------------------------------------------------------------


def test_header_vectors() -> None:
    assert fr.header(fr.TYPE_DATA, 0, 1, 5) == bytes.fromhex("000000000000000100000005")
    assert fr.window_update(3, 0x40000, fr.FLAG_SYN) == bytes.fromhex("000100010000000300040000")
    assert fr.window_update(2, 0, fr.FLAG_ACK) == bytes.fromhex("000100020000000200000000")
    assert fr.window_update(7, 0, fr.FLAG_FIN) == bytes.fromhex("000100040000000700000000")
    assert fr.window_update(7, 0, fr.FLAG_RST) == bytes.fromhex("000100080000000700000000")
    assert fr.ping(0xDEADBEEF, fr.FLAG_SYN) == bytes.fromhex("0002000100000000deadbeef")
    assert fr.ping(1, fr.FLAG_ACK) == bytes.fromhex("000200020000000000000001")
    assert fr.go_away(1) == bytes.fromhex("000300000000000000000001")
    assert fr.data_frame(1, b"ab") == bytes.fromhex("0000000000000001000000026162")


def test_client_odd_server_even_and_syn_ack_bytes() -> None:
    c, s = pair()
    sid, syn = c.open_stream()
    assert sid == 1 and syn == hdr(1, fr.FLAG_SYN, 1, 0)
    assert c.open_stream()[0] == 3
    sid2, syn2 = s.open_stream()
    assert sid2 == 2 and syn2 == hdr(1, fr.FLAG_SYN, 2, 0)
    assert s.receive_data(syn) == [StreamOpened(1)]
    assert s.accept(1) == hdr(1, fr.FLAG_ACK, 1, 0)
    assert s.accept(1) == b""  # ACK exactly once
    assert c.receive_data(hdr(1, fr.FLAG_ACK, 1, 0)) == [StreamAcked(1)]
    assert c.receive_data(hdr(1, fr.FLAG_ACK, 1, 0)) == []  # duplicate ACK ignored


def test_fin_and_rst_are_window_update_frames() -> None:
    c, _ = pair()
    sid, _ = c.open_stream()
    assert c.close_stream(sid) == hdr(1, fr.FLAG_FIN, sid, 0)
    assert c.close_stream(sid) == b""
    with pytest.raises(StreamClosed):
        c.send_data(sid, b"x")
    sid2, _ = c.open_stream()
    assert c.reset_stream(sid2) == hdr(1, fr.FLAG_RST, sid2, 0)
    assert c.reset_stream(sid2) == b""


@pytest.mark.parametrize("ftype", [fr.TYPE_DATA, fr.TYPE_WINDOW_UPDATE])
@pytest.mark.parametrize(
    "flags", [fr.FLAG_SYN, fr.FLAG_SYN | fr.FLAG_FIN, fr.FLAG_SYN | fr.FLAG_RST]
)
def test_flags_accepted_on_data_and_window_update(ftype: int, flags: int) -> None:
    _, s = pair()
    events = s.receive_data(hdr(ftype, flags, 1, 0))
    assert events[0] == StreamOpened(1)
    if flags & fr.FLAG_RST:
        assert events[1:] == [StreamReset(1)]
        assert 1 not in s.streams
    elif flags & fr.FLAG_FIN:
        assert events[1:] == [StreamEOF(1)]


def test_data_with_syn_and_fin_in_one_frame() -> None:
    _, s = pair()
    frame = hdr(0, fr.FLAG_SYN | fr.FLAG_FIN, 1, 3) + b"abc"
    assert s.receive_data(frame) == [StreamOpened(1), DataReceived(1, b"abc"), StreamEOF(1)]


def test_ack_on_data_frame_and_data_before_ack() -> None:
    c, s = pair()
    sid, syn = c.open_stream()
    n, parts = c.send_data(sid, b"early")  # data may follow the SYN before the ACK
    assert n == 5
    assert s.receive_data(syn + joined(parts)) == [StreamOpened(1), DataReceived(1, b"early")]
    ev = c.receive_data(hdr(0, fr.FLAG_ACK, sid, 2) + b"hi")
    assert ev == [StreamAcked(1), DataReceived(1, b"hi")]


def test_frames_split_at_every_byte_boundary() -> None:
    c, s = pair()
    sid, syn = c.open_stream()
    _, parts = c.send_data(sid, b"0123456789")
    wire = syn + joined(parts) + c.close_stream(sid) + fr.ping(9, fr.FLAG_SYN)
    events = []
    for i in range(len(wire)):
        events += s.receive_data(wire[i : i + 1])
    data = b"".join(e.data for e in events if isinstance(e, DataReceived))
    assert data == b"0123456789"
    assert events[0] == StreamOpened(1)
    assert StreamEOF(1) in events and events[-1] == PingReceived(9)
    assert s.data_to_send() == fr.ping(9, fr.FLAG_ACK)


def test_large_payload_is_header_plus_view() -> None:
    c, _ = pair()
    sid, _ = c.open_stream()
    payload = bytes(200 * KiB)
    n, parts = c.send_data(sid, payload)
    assert n == len(payload) and len(parts) == 2
    # never a bare header: it carries the first 16 KiB; the rest is a view, not a copy
    assert parts[0] == hdr(0, 0, sid, n) + payload[: 16 * KiB]
    assert isinstance(parts[1], memoryview) and parts[1].obj is payload
    assert len(parts[1]) == n - 16 * KiB


def test_max_frame_size_splits() -> None:
    c, _ = pair(max_frame_size=100 * KiB)
    sid, _ = c.open_stream()
    n, parts = c.send_data(sid, bytes(250 * KiB))
    assert n == 250 * KiB
    sizes = [struct.unpack(">BBHII", bytes(p)[:12])[4] for p in parts if isinstance(p, bytes)]
    assert sizes == [100 * KiB, 100 * KiB, 50 * KiB]


# -- ping / go away --------------------------------------------------------------------


def test_ping_answer_and_rtt() -> None:
    c, s = pair()
    value, frame = c.ping(10.0)
    assert frame == fr.ping(value, fr.FLAG_SYN)
    assert s.receive_data(frame) == [PingReceived(value)]
    ack = s.data_to_send()
    assert ack == fr.ping(value, fr.FLAG_ACK)
    assert c.receive_data(ack, now=10.25) == [PongReceived(value, 0.25)]
    assert c.rtt == 0.25
    # an unsolicited or repeated ACK is ignored and never answered
    assert c.receive_data(ack, now=11.0) == []
    assert c.receive_data(fr.ping(777, fr.FLAG_ACK)) == []
    assert c.data_to_send() == b""


@pytest.mark.parametrize("code", [0, 1, 2, 0x1001])
def test_go_away_codes(code: int) -> None:
    c, s = pair()
    sid, syn = c.open_stream()
    s.receive_data(syn)
    events = c.receive_data(fr.go_away(code))
    assert events[0] == GoAwayReceived(code)
    with pytest.raises(ConnectionClosed):
        c.open_stream()
    if code == 0:
        assert len(events) == 1 and c.terminated is None
        assert c.send_window(sid) > 0  # existing streams finish
    else:
        assert isinstance(events[1], ConnectionTerminated)
        assert isinstance(events[1].error, YamuxGoAway) and events[1].error.code == code


def test_after_our_go_away_inbound_syn_is_refused() -> None:
    c, s = pair()
    assert s.go_away(0) == fr.go_away(0)
    assert s.go_away(0) == b""
    _, syn = c.open_stream()
    assert s.receive_data(syn) == []
    assert s.data_to_send() == hdr(1, fr.FLAG_RST, 1, 0)
    assert c.receive_data(hdr(1, fr.FLAG_RST, 1, 0)) == [StreamReset(1)]
    assert c.unacked_outbound == 0


# -- tolerance -------------------------------------------------------------------------


def test_frames_for_unknown_ids_are_tolerated() -> None:
    _, s = pair()
    wire = (
        hdr(1, 0, 99, 1000)
        + hdr(0, 0, 99, 4)
        + b"junk"
        + hdr(1, fr.FLAG_FIN, 98, 0)
        + hdr(1, fr.FLAG_RST, 97, 0)
        + hdr(0, fr.FLAG_FIN, 95, 2)
        + b"zz"
        + hdr(0, 0, 0, 3)
        + b"abc"
        + hdr(1, 0, 0, 5)
    )
    assert s.receive_data(wire) == []
    assert s.terminated is None and s.data_to_send() == b""


def test_late_frames_after_both_fins() -> None:
    c, s = pair()
    sid, syn = c.open_stream()
    s.receive_data(syn + c.close_stream(sid))
    s.accept(sid)
    c.receive_data(s.close_stream(sid))
    assert sid not in c.streams and sid not in s.streams
    assert c.receive_data(hdr(1, 0, sid, 4096) + hdr(0, 0, sid, 1) + b"x") == []


# -- protocol errors -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("wire", "reason"),
    [
        (b"\x01" + hdr(0, 0, 1, 0)[1:], "bad-version"),
        (hdr(4, 0, 0, 0), "unknown-type"),
        (hdr(1, fr.FLAG_SYN, 2, 0) + hdr(1, fr.FLAG_SYN, 2, 0), "duplicate-syn"),
        (hdr(1, fr.FLAG_SYN, 1, 0), "wrong-parity"),
        (hdr(1, fr.FLAG_SYN, 0, 0), "syn-on-session"),
        (hdr(0, fr.FLAG_SYN, 2, 256 * KiB + 1), "window-overrun"),
        (hdr(1, fr.FLAG_SYN | fr.FLAG_FIN, 2, 0) + hdr(1, fr.FLAG_FIN, 2, 0), "second-fin"),
        (hdr(1, fr.FLAG_SYN | fr.FLAG_FIN, 2, 0) + hdr(0, 0, 2, 1) + b"x", "data-after-fin"),
    ],
)
def test_protocol_errors_send_go_away_1(wire: bytes, reason: str) -> None:
    c = YamuxSession(is_initiator=True)  # the initiator: the peer (server) uses even ids
    err = raised(c, wire)
    assert err.reason == reason and reason in str(err)
    assert c.data_to_send() == fr.go_away(1)
    with pytest.raises(YamuxProtocolError) as again:  # the session is dead
        c.receive_data(hdr(1, fr.FLAG_SYN, 4, 0))
    assert again.value is err
    with pytest.raises(ConnectionClosed):
        c.open_stream()


def test_window_overrun_across_frames() -> None:
    c, s = pair()
    sid, syn = c.open_stream()
    s.receive_data(syn)
    assert s.receive_data(hdr(0, 0, sid, 256 * KiB) + bytes(256 * KiB))[-1] == DataReceived(
        sid, bytes(256 * KiB)
    )
    assert raised(s, hdr(0, 0, sid, 1) + b"x").reason == "window-overrun"


# -- backlog and limits ----------------------------------------------------------------


def test_outbound_unacked_limit() -> None:
    c, _s = pair(max_outbound_unacked=3)
    ids = [c.open_stream()[0] for _ in range(3)]
    assert not c.can_open
    with pytest.raises(ResourceLimitExceeded):
        c.open_stream()
    c.receive_data(hdr(1, fr.FLAG_ACK, ids[0], 0))
    assert c.can_open
    c.open_stream()
    c.reset_stream(ids[1])  # a stream reset before its ACK frees its slot
    assert c.can_open


def test_early_unacked_limit_until_the_first_ack() -> None:
    """Before the peer ACKed anything only early_outbound_unacked SYNs go out (js-libp2p
    aborts a connection with more than 10 streams opened before it listens)."""
    c, _s = pair(max_outbound_unacked=5)
    assert c.unacked_limit == 5  # the smaller of the two
    c, _s = pair(early_outbound_unacked=2, max_outbound_unacked=5)
    assert c.unacked_limit == 2
    ids = [c.open_stream()[0] for _ in range(2)]
    assert not c.can_open
    with pytest.raises(ResourceLimitExceeded):
        c.open_stream()
    c.reset_stream(ids[1])  # a freed slot is not an ACK: still the early limit
    c.open_stream()
    assert not c.can_open
    c.receive_data(hdr(1, fr.FLAG_ACK, ids[0], 0))
    assert c.unacked_limit == 5
    assert c.can_open
    for _ in range(4):
        c.open_stream()
    assert c.unacked_outbound == 5
    assert not c.can_open


def test_accept_backlog_and_max_streams() -> None:
    s, _ = pair(accept_backlog=2, max_streams=3)  # the client: the peer opens even ids
    ev = s.receive_data(b"".join(hdr(1, fr.FLAG_SYN, i, 0) for i in (2, 4, 6)))
    assert ev == [StreamOpened(2), StreamOpened(4)]
    assert s.data_to_send() == hdr(1, fr.FLAG_RST, 6, 0)
    s.accept(2)
    s.accept(4)
    assert s.receive_data(hdr(1, fr.FLAG_SYN, 8, 0)) == [StreamOpened(8)]
    s.accept(8)
    assert s.receive_data(hdr(0, fr.FLAG_SYN, 10, 3) + b"abc") == []  # 3 open: refused
    assert s.data_to_send() == hdr(1, fr.FLAG_RST, 10, 0)
    s.receive_data(hdr(1, fr.FLAG_RST, 2, 0))
    assert s.receive_data(hdr(1, fr.FLAG_SYN, 12, 0)) == [StreamOpened(12)]


# -- flow control ----------------------------------------------------------------------


def open_pair(**kw: object) -> tuple[YamuxSession, YamuxSession, int]:
    c, s = pair(**kw)
    sid, syn = c.open_stream(0.0)
    s.receive_data(syn, now=0.0)
    c.receive_data(s.accept(sid))
    return c, s, sid


def test_send_window_accounting() -> None:
    c, s, sid = open_pair()
    n, parts = c.send_data(sid, bytes(300 * KiB))
    assert n == 256 * KiB and c.send_window(sid) == 0
    assert c.send_data(sid, b"x") == (0, [])
    s.receive_data(joined(parts), now=0.0)
    assert s.consumed(sid, 100 * KiB, 1.0) == b""  # below half the window: batched
    upd = s.consumed(sid, 28 * KiB, 2.0)
    assert upd == hdr(1, 0, sid, 128 * KiB)
    assert c.receive_data(upd) == [WindowUpdated(sid, 128 * KiB)]
    assert c.send_window(sid) == 128 * KiB


def test_receiver_accepts_frames_as_large_as_granted_window() -> None:
    _c, s, sid = open_pair()
    s.receive_data(hdr(0, 0, sid, 256 * KiB) + bytes(256 * KiB))
    upd = s.consumed(sid, 256 * KiB, 1.0)
    assert upd == hdr(1, 0, sid, 256 * KiB)
    # one frame of the whole granted window (js and go do this) is fine
    big = s.receive_data(hdr(0, 0, sid, 256 * KiB) + bytes(256 * KiB))
    assert sum(len(e.data) for e in big if isinstance(e, DataReceived)) == 256 * KiB
    assert s.terminated is None


def drain_in_halves(s: YamuxSession, sid: int, times: list[float]) -> list[int]:
    """Feed and consume half a window at each time; return the granted maxima."""
    maxima = []
    for t in times:
        half = s.receive_window(sid) // 2
        s.receive_data(hdr(0, 0, sid, half) + bytes(half), now=t)
        s.consumed(sid, half, t)
        maxima.append(s.receive_window(sid))
    return maxima


def test_auto_tuning_grows_when_fast_relative_to_rtt() -> None:
    _c, s, sid = open_pair()
    s.rtt = 0.010
    maxima = drain_in_halves(s, sid, [0.001 * i for i in range(1, 12)])
    assert maxima[0] == 512 * KiB  # first update already within 2 RTTs of the stream start
    assert maxima[-1] == 16 * 1024 * KiB  # doubled up to max_stream_window, never beyond
    assert maxima == sorted(maxima)


def test_auto_tuning_needs_rtt_and_speed() -> None:
    _, s, sid = open_pair()
    assert drain_in_halves(s, sid, [0.001, 0.002, 0.003]) == [256 * KiB] * 3  # no RTT yet
    s.rtt = 0.010
    assert drain_in_halves(s, sid, [1.0, 2.0, 3.0]) == [256 * KiB] * 3  # slow reader


def test_auto_tuning_window_update_carries_growth() -> None:
    _, s, sid = open_pair()
    s.rtt = 1.0
    s.receive_data(hdr(0, 0, sid, 128 * KiB) + bytes(128 * KiB))
    assert s.consumed(sid, 128 * KiB, 0.5) == hdr(1, 0, sid, 128 * KiB + 256 * KiB)


def test_session_receive_budget_bounds_growth() -> None:
    c, s = pair(max_session_receive_buffer=1024 * KiB)
    s.rtt = 1.0
    sids = []
    for _ in range(3):
        sid, syn = c.open_stream()
        s.receive_data(syn, now=0.0)
        s.accept(sid)
        sids.append(sid)
    for sid in sids:
        drain_in_halves(s, sid, [0.1, 0.2, 0.3, 0.4])
    windows = [s.receive_window(sid) for sid in sids]
    assert sum(windows) == 1024 * KiB  # 3 x 256 KiB base + the 256 KiB left to grow
    assert windows == [512 * KiB, 256 * KiB, 256 * KiB]  # the first stream took it
    # a 4th inbound stream would not fit: refused with RST
    sid4, syn4 = c.open_stream()
    assert s.receive_data(syn4) == []
    assert s.data_to_send() == hdr(1, fr.FLAG_RST, sid4, 0)
    s.receive_data(hdr(1, fr.FLAG_RST, sids[0], 0))  # its release lets the next one grow
    drain_in_halves(s, sids[1], [0.5, 0.6, 0.7])
    assert s.receive_window(sids[1]) == 768 * KiB  # 1 MiB minus the other stream's 256 KiB
    # streams we open always get their base window, even beyond the bound
    for _ in range(4):
        s.open_stream()
    assert s._budget.used > 1024 * KiB


def test_initial_window_option_rides_on_syn_and_ack() -> None:
    c, s = pair(initial_window=1024 * KiB)
    sid, syn = c.open_stream()
    assert syn == hdr(1, fr.FLAG_SYN, sid, 768 * KiB)
    assert s.receive_data(syn) == [StreamOpened(sid), WindowUpdated(sid, 1024 * KiB)]
    assert s.accept(sid) == hdr(1, fr.FLAG_ACK, sid, 768 * KiB)


# -- fuzzing -----------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=64), max_size=8), st.booleans())
def test_random_bytes_never_raise_untyped(chunks: list[bytes], is_initiator: bool) -> None:
    sess = YamuxSession(is_initiator=is_initiator)
    for chunk in chunks:
        try:
            events = sess.receive_data(chunk, now=1.0)
        except MuxerError:
            break
        for e in events:
            if isinstance(e, ConnectionTerminated):
                assert isinstance(e.error, MuxerError)
    sess.data_to_send()


header_st = st.builds(
    hdr,
    st.integers(0, 3),
    st.integers(0, 15),
    st.integers(0, 6),
    st.integers(0, 300 * KiB),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(header_st, max_size=12), st.booleans())
def test_random_frames_never_raise_untyped(headers: list[bytes], is_initiator: bool) -> None:
    sess = YamuxSession(is_initiator=is_initiator)
    sess.open_stream()
    for h in headers:
        length = struct.unpack(">BBHII", h)[4]
        wire = h + bytes(min(length, 4096)) if h[1] == 0 else h
        try:
            events = sess.receive_data(wire, now=0.5)
        except MuxerError:
            break
        for e in events:
            if isinstance(e, ConnectionTerminated):
                assert isinstance(e.error, MuxerError)
        for sid in list(sess.streams):
            sess.consumed(sid, 1000, 1.0)


def test_outstanding_pings_are_bounded() -> None:
    c, _ = pair()
    values = [c.ping(float(i))[0] for i in range(40)]
    assert c.receive_data(fr.ping(values[0], fr.FLAG_ACK), now=100.0) == []  # forgotten
    assert c.receive_data(fr.ping(values[-1], fr.FLAG_ACK), now=100.0) == [
        PongReceived(values[-1], 61.0)
    ]


def test_ping_values_are_random_and_only_outstanding_ones_count() -> None:
    c, _ = pair()
    values = {c.ping(0.0)[0] for _ in range(16)}
    assert len(values) == 16 and values != set(range(1, 17))
    # a blind ACK of a counter value is ignored
    guesses = b"".join(fr.ping(v, fr.FLAG_ACK) for v in range(1, 17) if v not in values)
    assert c.receive_data(guesses, now=1.0) == []


def test_ping_replies_per_batch_are_bounded() -> None:
    _, s = pair()
    flood = fr.ping(5, fr.FLAG_SYN) * (MAX_QUEUED_REPLIES + 500)
    assert len(s.receive_data(flood)) == MAX_QUEUED_REPLIES + 500  # PingReceived each
    assert s.data_to_send() == fr.ping(5, fr.FLAG_ACK) * MAX_QUEUED_REPLIES
    assert s.dropped_pings == 500
    # the cap is per batch: the next one is answered again
    assert s.receive_data(fr.ping(6, fr.FLAG_SYN)) == [PingReceived(6)]
    assert s.data_to_send() == fr.ping(6, fr.FLAG_ACK)


def test_pings_not_answered_while_the_caller_says_so() -> None:
    _, s = pair()
    s.answer_pings = False
    s.receive_data(fr.ping(1, fr.FLAG_SYN) * 3)
    assert s.data_to_send() == b"" and s.dropped_pings == 3


def test_refused_syn_flood_in_one_batch_ends_the_session() -> None:
    _, s = pair(accept_backlog=1)
    wire = b"".join(
        hdr(fr.TYPE_WINDOW_UPDATE, fr.FLAG_SYN, 2 * i + 1, 0) for i in range(MAX_QUEUED_REPLIES + 2)
    )
    err = raised(s, wire)
    assert isinstance(err, YamuxControlFlood) and err.reason == "control-flood"
    out = s.data_to_send()
    assert len(out) == (MAX_QUEUED_REPLIES + 1) * fr.HEADER_SIZE  # RSTs, then GoAway(1)
    assert out.endswith(fr.go_away(fr.GO_AWAY_PROTOCOL_ERROR))


def test_consecutive_data_frames_of_a_stream_are_joined() -> None:
    _, s = pair()
    wire = (
        hdr(1, fr.FLAG_SYN, 1, 0)
        + hdr(1, fr.FLAG_SYN, 3, 0)
        + fr.data_frame(1, b"ab")
        + fr.data_frame(1, b"cd")
        + fr.data_frame(3, b"xy")
        + fr.data_frame(1, b"ef")
        + hdr(1, 0, 3, 10)  # a window update between data frames splits them
        + fr.data_frame(1, b"gh")
        + fr.data_frame(1, b"ij", flags=fr.FLAG_FIN)
        + fr.data_frame(3, b"z")
    )
    assert s.receive_data(wire) == [
        StreamOpened(1),
        StreamOpened(3),
        DataReceived(1, b"abcd"),
        DataReceived(3, b"xy"),
        DataReceived(1, b"ef"),
        WindowUpdated(3, 256 * KiB + 10),
        DataReceived(1, b"gh"),
        DataReceived(1, b"ij"),
        StreamEOF(1),
        DataReceived(3, b"z"),
    ]
