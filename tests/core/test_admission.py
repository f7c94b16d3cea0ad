"""Inbound admission (p2pkit.admission): what a stranger's connection passes before its
handshake, and the ticket a MuxedTransport takes early and hands back with the
connection (used as is, never counted twice; anything else is released)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from multiaddr import Multiaddr

from p2pkit.admission import Admission
from p2pkit.errors import ConnectionClosed
from p2pkit.gater import ConnectionGated
from p2pkit.limits import LimitExceeded, ResourceLimits, limits_from
from p2pkit.logs import RepeatLimiter
from p2pkit.network import ConnectionGater
from p2pkit.rcmgr import ResourceManager

LOCAL = Multiaddr("/ip4/10.0.0.1/udp/4001/quic-v1")
REMOTE = Multiaddr("/ip4/10.0.0.2/udp/5555/quic-v1")


class DenyAll(ConnectionGater):
    def allow_accept(self, local_addr: Multiaddr | None, remote_addr: Multiaddr | None) -> bool:
        return False


@dataclasses.dataclass
class Handed:
    """The fields of a connection the admission reads."""

    local_addr: Multiaddr | None
    remote_addr: Multiaddr | None
    admission: object = None


class ForeignTicket:
    closed = 0

    def close(self) -> None:
        self.closed += 1


def make(
    gater: ConnectionGater | None = None, **limits: Any
) -> tuple[Admission, ResourceManager, list[bool]]:
    rcmgr = ResourceManager(limits_from(ResourceLimits(**limits)))  # type: ignore[arg-type]
    closing = [False]
    admission = Admission(gater or ConnectionGater(), rcmgr, RepeatLimiter(), lambda: closing[0])
    return admission, rcmgr, closing


def test_admit_counts_a_pending_handshake_and_refuses_beyond_the_limit() -> None:
    admission, rcmgr, _ = make(max_pending_inbound=2, max_pending_per_ip=None)
    tickets = [admission.admit(LOCAL, REMOTE) for _ in range(2)]
    assert rcmgr.system.pending == 2 and rcmgr.system.conns_in == 2
    with pytest.raises(LimitExceeded) as refused:
        admission.admit(LOCAL, REMOTE)
    assert refused.value.limit == "max_pending_inbound"
    tickets[0].close()
    tickets[0].close()  # idempotent: a transport may release twice
    third = admission.admit(LOCAL, REMOTE)
    for t in (tickets[1], third):
        t.close()
    assert rcmgr.system.empty and rcmgr.tracked_scopes == 0


def test_admit_applies_the_gater_and_the_stopping_host() -> None:
    admission, rcmgr, closing = make(DenyAll())
    with pytest.raises(ConnectionGated):
        admission.admit(LOCAL, REMOTE)
    admission, rcmgr, closing = make()
    closing[0] = True
    with pytest.raises(ConnectionClosed):
        admission.admit(LOCAL, REMOTE)
    assert rcmgr.system.empty


def test_a_handed_back_ticket_is_used_not_counted_twice() -> None:
    admission, rcmgr, _ = make()
    ticket = admission.admit(LOCAL, REMOTE)
    assert admission.scope_for(Handed(LOCAL, REMOTE, ticket)) is ticket  # type: ignore[arg-type]
    assert rcmgr.system.pending == 1
    scope = admission.scope_for(Handed(LOCAL, REMOTE))  # type: ignore[arg-type]
    assert scope is not ticket and rcmgr.system.pending == 2  # no ticket: admitted now
    ticket.close()
    scope.close()
    assert rcmgr.system.empty


def test_released_foreign_or_late_tickets_are_released_and_admitted_afresh() -> None:
    admission, rcmgr, closing = make()
    released = admission.admit(LOCAL, REMOTE)
    released.close()
    fresh = admission.scope_for(Handed(LOCAL, REMOTE, released))  # type: ignore[arg-type]
    assert fresh is not released and rcmgr.system.pending == 1
    fresh.close()
    foreign = ForeignTicket()
    other = admission.scope_for(Handed(LOCAL, REMOTE, foreign))  # type: ignore[arg-type]
    assert foreign.closed == 1 and rcmgr.system.pending == 1
    other.close()
    late = admission.admit(LOCAL, REMOTE)
    closing[0] = True  # the handshake finished while the host was stopping
    with pytest.raises(ConnectionClosed):
        admission.scope_for(Handed(LOCAL, REMOTE, late))  # type: ignore[arg-type]
    assert late.done and rcmgr.system.empty and rcmgr.tracked_scopes == 0
