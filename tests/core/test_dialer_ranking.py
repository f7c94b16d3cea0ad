"""Address ranking: families interleaved, then QUIC before TCP (pure, no sockets)."""

from __future__ import annotations

from multiaddr import Multiaddr

from p2pkit.dialer import rank_addrs

TCP4 = Multiaddr("/ip4/10.0.0.1/tcp/4001")
TCP6 = Multiaddr("/ip6/fd00::1/tcp/4001")
QUIC4 = Multiaddr("/ip4/10.0.0.1/udp/4001/quic-v1")
QUIC6 = Multiaddr("/ip6/fd00::1/udp/4001/quic-v1")
MEM = Multiaddr("/memory/7")


def test_quic_first_then_tcp_families_interleaved():
    assert rank_addrs([TCP4, TCP6, QUIC4, QUIC6]) == [QUIC6, QUIC4, TCP6, TCP4]
    assert rank_addrs([TCP4, QUIC4, MEM]) == [QUIC4, TCP4, MEM]


def test_prefer_quic_off_keeps_family_interleaving():
    assert rank_addrs([TCP4, TCP6, QUIC4, QUIC6], prefer_quic=False) == [TCP6, TCP4, QUIC6, QUIC4]


def test_prefer_ipv4_with_quic():
    assert rank_addrs([TCP6, QUIC6, TCP4, QUIC4], prefer_ipv6=False) == [QUIC4, QUIC6, TCP4, TCP6]
