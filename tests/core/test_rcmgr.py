"""The resource manager's accounting: scopes nest, refusals are all-or-nothing and typed,
IP and peer scopes vanish with their last connection, refusals are logged at a bounded
rate."""

from __future__ import annotations

import logging

import pytest

from p2pkit.crypto import generate_private_key
from p2pkit.limits import (
    LimitExceeded,
    Limits,
    ResourceLimits,
    ScopeLimit,
    limits_from,
    memory_budget,
)
from p2pkit.peer import PeerId
from p2pkit.rcmgr import ResourceManager


def peer() -> PeerId:
    return PeerId.from_public_key(generate_private_key("ed25519").public_key)


def small(**overrides: ScopeLimit) -> Limits:
    base = {
        "system": ScopeLimit(conns=10, pending=4, streams=20, memory=1000),
        "ip": ScopeLimit(conns=3, pending=2, memory=600),
        "peer": ScopeLimit(conns=2, streams=5, memory=500),
        "conn": ScopeLimit(streams=3, memory=400),
        "stream": ScopeLimit(memory=100),
    }
    base.update(overrides)
    return Limits(**base)


def test_per_ip_pending_and_connection_limits() -> None:
    rm = ResourceManager(small())
    a = [rm.open_connection("inbound", "192.0.2.7") for _ in range(2)]
    with pytest.raises(LimitExceeded, match=r"ip\.pending"):
        rm.open_connection("inbound", "192.0.2.7")
    # Another address is its own scope.
    other = rm.open_connection("inbound", "198.51.100.1")
    a[0].set_peer(peer())  # handshake done: no longer pending
    third = rm.open_connection("inbound", "192.0.2.7")
    third.set_peer(peer())
    with pytest.raises(LimitExceeded, match=r"ip\.conns"):
        rm.open_connection("inbound", "192.0.2.7")
    assert rm.refusals["ip.pending"] == 1 and rm.refusals["ip.conns"] == 1
    for c in (*a, other, third):
        c.close()
    assert rm.tracked_scopes == 0
    assert rm.system.empty


def test_ipv6_prefix_groups_a_56() -> None:
    rm = ResourceManager(small(ip=ScopeLimit(conns=1)))
    rm.open_connection("inbound", "2001:db8:0:ff::1")
    with pytest.raises(LimitExceeded):
        rm.open_connection("inbound", "2001:db8:0:1::2")  # same /56
    rm.open_connection("inbound", "2001:db8:0:100::1")  # next /56


def test_loopback_is_not_limited_per_ip() -> None:
    rm = ResourceManager(small(ip=ScopeLimit(conns=1, pending=1)))
    conns = [rm.open_connection("inbound", "127.0.0.1") for _ in range(4)]
    assert rm.tracked_scopes == 0
    with pytest.raises(LimitExceeded, match=r"system\.pending"):
        rm.open_connection("inbound", "::1")
    for c in conns:
        c.close()


def test_peer_connection_limit_at_set_peer() -> None:
    rm = ResourceManager(small())
    p = peer()
    c1, c2, c3 = (rm.open_connection("outbound", None) for _ in range(3))
    c1.set_peer(p)
    c2.set_peer(p)
    with pytest.raises(LimitExceeded, match=r"peer\.conns"):
        c3.set_peer(p)
    c3.close()
    c1.close()
    c2.close()
    assert rm.tracked_scopes == 0 and rm.system.empty


def test_streams_and_memory_all_or_nothing() -> None:
    rm = ResourceManager(small())
    conn = rm.open_connection("inbound", "192.0.2.1")
    conn.set_peer(peer())
    streams = [conn.open_stream("inbound") for _ in range(3)]
    with pytest.raises(LimitExceeded, match=r"conn\.streams"):
        conn.open_stream("outbound")
    streams[0].reserve_memory(100)
    with pytest.raises(LimitExceeded, match=r"stream\.memory"):
        streams[0].reserve_memory(1)
    streams[1].reserve_memory(100)
    streams[2].reserve_memory(100)
    conn.reserve_memory(100)
    # conn at 400 of 400: a refusal changes no counter anywhere.
    before = (conn.scope.memory, rm.system.memory)
    with pytest.raises(LimitExceeded, match=r"conn\.memory"):
        conn.reserve_memory(1)
    assert (conn.scope.memory, rm.system.memory) == before == (400, 400)
    streams[0].close()
    assert conn.scope.memory == 300 and rm.system.memory == 300
    assert rm.system.streams_in == 2
    conn.close()  # closes the remaining streams too
    assert rm.system.empty and rm.tracked_scopes == 0


def test_refusals_logged_at_bounded_rate(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    rm = ResourceManager(small(ip=ScopeLimit(conns=0)), clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="p2pkit.rcmgr"):
        for _ in range(1000):
            with pytest.raises(LimitExceeded):
                rm.open_connection("inbound", "192.0.2.9")
        now[0] = 11.0
        with pytest.raises(LimitExceeded):
            rm.open_connection("inbound", "192.0.2.9")
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2
    assert "999 more refusals" in lines[1]
    assert rm.refusals["ip.conns"] == 1001
    assert rm.tracked_scopes == 0  # refused strangers leave no state


def test_limits_from_the_config_table() -> None:
    table = ResourceLimits(max_connections_per_ip=3, max_muxer_memory_per_conn=1 << 20)
    limits = limits_from(table)
    assert limits.ip.conns == 3 and limits.ip.pending == 8
    assert limits.peer.conns == 8 and limits.conn.memory == 1 << 20
    assert limits.system.memory == memory_budget() >= 128 << 20


def test_each_refusal_kind_survives_the_cli_repeat_filter() -> None:
    """Refusals share one message template; the CLI's template filter must not let a
    flood of one kind (many IPs over their connection limit) hide another kind."""
    from p2pkit.logs import RepeatFilter

    seen: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    handler = Keep()
    handler.addFilter(RepeatFilter(burst=3))
    logger = logging.getLogger("p2pkit.rcmgr")
    logger.addHandler(handler)
    try:
        rm = ResourceManager(small(ip=ScopeLimit(conns=0)))
        with pytest.raises(LimitExceeded):
            rm.open_connection("inbound", "192.0.2.1")
        for i in range(10):  # ten other kinds, each logged once: past the filter's burst
            rm.record(f"conn.kind{i}", f"kind {i} exceeded")
        rm.record("peer.memory", "max_memory_per_peer exceeded")
    finally:
        logger.removeHandler(handler)
    assert any("max_memory_per_peer" in line for line in seen), seen
