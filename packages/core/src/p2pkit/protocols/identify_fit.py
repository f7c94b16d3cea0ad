"""Our identify message within what every peer reads: 4 KiB.

rust-libp2p refuses an identify message over 4096 bytes, and go-libp2p keeps its own to
4 KiB for that reason (it reads up to 8 KiB).  A node listening on many interfaces and
transports lists each address twice (listen addresses and signed peer record), so its
message can grow past that; the addresses then go best first (public, then private,
then loopback; QUIC, then TCP, then WebSocket, as go ranks them) and the worst are left
out of both lists until the message fits.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Sequence

from multiaddr import Multiaddr
from multiaddr.protocols import (
    P_IP4,
    P_IP6,
    P_QUIC1,
    P_TCP,
    P_TLS,
    P_WEBTRANSPORT,
    P_WS,
    P_WSS,
)

from p2pkit.protocols.identify_message import IdentifyInfo

__all__ = ["MAX_OWN_MESSAGE_SIZE", "fit_addresses", "rank_own_addrs"]

MAX_OWN_MESSAGE_SIZE = 4096
"""The largest identify message we send (rust-libp2p's limit)."""

# By multiaddr protocol code (go-libp2p's weights): QUIC v1, TCP, WebSocket (ws, wss,
# tls), WebTransport.
_TRANSPORT_WEIGHT = {P_QUIC1: 5, P_TCP: 4, P_WSS: 3, P_TLS: 3, P_WS: 3, P_WEBTRANSPORT: 2}


def _score(addr: Multiaddr) -> int:
    protos = list(addr.protocols())
    scope = 1 << 12  # a DNS name or anything else: as public
    if protos and protos[0].code in (P_IP4, P_IP6):
        ip = ipaddress.ip_address(str(addr.value_for_protocol(protos[0].code)))
        scope = 1 << 12 if ip.is_global else (0 if ip.is_loopback else 1 << 11)
    weight = 0
    for p in protos:  # the outermost transport counts: /tcp/.../ws is a WebSocket one
        weight = _TRANSPORT_WEIGHT.get(p.code, weight)
    return scope | (1 << weight)


def rank_own_addrs(addrs: Sequence[Multiaddr]) -> list[Multiaddr]:
    """``addrs`` best first (stable within a rank)."""
    return sorted(addrs, key=_score, reverse=True)


def _field_size(n: int) -> int:
    """Bytes of a length-delimited field of ``n`` bytes: tag, length, value."""
    return 1 + (n.bit_length() + 6) // 7 + n if n else 2


def fit_addresses(
    info: IdentifyInfo,
    addrs: Sequence[Multiaddr],
    record_for: Callable[[Sequence[Multiaddr]], bytes | None],
    limit: int = MAX_OWN_MESSAGE_SIZE,
) -> IdentifyInfo:
    """``info`` (holding ``addrs`` and their record) with the fewest of its worst
    addresses left out that brings its encoding within ``limit``; ``record_for`` makes
    the signed record of a list of addresses.  Returned as is when it fits (checked
    by an upper bound first, so the usual message is not encoded twice) or when it
    does not fit even without addresses (a huge protocol list: sent as it is)."""
    fields = [info.public_key, info.observed_addr, info.signed_peer_record]
    upper = sum(_field_size(len(f)) for f in fields if f is not None)
    upper += sum(_field_size(len(a)) for a in info.listen_addrs)
    upper += sum(_field_size(len(p.encode())) for p in info.protocols)
    upper += _field_size(len(info.agent_version.encode()))
    upper += _field_size(len(info.protocol_version.encode()))
    if upper <= limit:
        return info
    size = len(info.encode())
    ranked = rank_own_addrs(addrs)
    keep = len(ranked)
    while size > limit and keep > 0:
        # An address costs its listen field and its AddressInfo in the record (the
        # record's own length prefixes may shrink too: the estimate errs on the big side).
        raw = ranked[keep - 1].to_bytes()
        size -= _field_size(len(raw)) + _field_size(_field_size(len(raw)))
        keep -= 1
    while True:
        kept = ranked[:keep]
        trimmed = IdentifyInfo(
            protocol_version=info.protocol_version,
            agent_version=info.agent_version,
            public_key=info.public_key,
            listen_addrs=[a.to_bytes() for a in kept],
            observed_addr=info.observed_addr,
            protocols=info.protocols,
            signed_peer_record=record_for(kept) if info.signed_peer_record else None,
        )
        if len(trimmed.encode()) <= limit:
            return trimmed
        if keep == 0:
            return info  # peers that read more still get every address
        keep -= 1
