"""The in-memory peerstore (the default backend)."""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from p2pkit.abc import Peerstore

if TYPE_CHECKING:
    from multiaddr import Multiaddr

    from p2pkit.crypto import PublicKey
    from p2pkit.peer import PeerId

#: Address TTLs, as in go-libp2p's peerstore.
PERMANENT_ADDR_TTL = float("inf")
CONNECTED_ADDR_TTL = 365 * 24 * 3600.0
RECENTLY_CONNECTED_ADDR_TTL = 15 * 60.0
TEMP_ADDR_TTL = 2 * 60.0
#: Default bound on stored addresses per peer (every peerstore backend uses it).
MAX_ADDRS_PER_PEER = 64


#: Default bound on stored protocol ids per peer (every peerstore backend uses it):
#: go-libp2p's in-memory protobook keeps at most 128 (``pstoremem.WithMaxProtocols``).
#: Identify hands over what the peer announced, and one 64 KiB identify message holds
#: some 16,000 short ids: kept whole, they cost about 1 MiB per peer, for as long as the
#: peer is remembered (after it left too).
MAX_PROTOCOLS_PER_PEER = 128
#: The longest protocol id multistream-select can carry (a message of 1024 bytes with
#: its newline, ``p2pkit.multistream.messages.MAX_MESSAGE_SIZE``): a longer id announced
#: by a peer could never be negotiated, so it is not stored.
MAX_PROTOCOL_ID_BYTES = 1023


def bound_protocols(protocols: Sequence[str], limit: int = MAX_PROTOCOLS_PER_PEER) -> list[str]:
    """What a peerstore keeps of a peer's protocol ids: the first ``limit`` distinct ones
    (in the given order) that multistream-select can carry, interned, since every peer
    announces the same few ids (go-libp2p's protobook interns them too)."""
    out: dict[str, None] = {}
    for proto in protocols:
        if len(out) >= limit:
            break
        if proto in out or len(proto) > MAX_PROTOCOL_ID_BYTES:
            continue
        if not proto.isascii() and len(proto.encode("utf-8", "replace")) > MAX_PROTOCOL_ID_BYTES:
            continue
        out[sys.intern(proto)] = None
    return list(out)


#: Peers a store remembers at most (connected peers are never evicted): a node that
#: meets thousands of strangers a day keeps what it needs to redial recent ones.
DEFAULT_MAX_PEERS = 1000


@dataclasses.dataclass
class MemoryPeerstoreOptions:
    """Options of the ``memory`` peerstore plugin (``peerstore = {name = "memory", ...}``)."""

    max_peers: int = DEFAULT_MAX_PEERS
    """Bound on remembered peers besides connected ones (see ``Peerstore.collect``)."""
    max_addrs_per_peer: int = MAX_ADDRS_PER_PEER
    max_protocols_per_peer: int = MAX_PROTOCOLS_PER_PEER
    """Bound on stored protocol ids per peer (the first ones announced are kept)."""

    def __post_init__(self) -> None:
        if self.max_peers < 0 or self.max_addrs_per_peer < 1 or self.max_protocols_per_peer < 0:
            raise ValueError(
                "max_peers and max_protocols_per_peer must be >= 0, max_addrs_per_peer >= 1"
            )


class MemoryPeerstore(Peerstore):
    """Dict-based peerstore; addresses expire after their TTL (checked on read).

    Bounded: at most ``max_addrs_per_peer`` addresses (oldest expiry dropped first) and
    ``max_protocols_per_peer`` protocol ids (:func:`bound_protocols`) are kept per peer,
    so a peer cannot make us store unbounded data, and :meth:`collect` keeps at most
    ``max_peers`` peers beyond those the caller keeps.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_addrs_per_peer: int = MAX_ADDRS_PER_PEER,
        max_peers: int = DEFAULT_MAX_PEERS,
        max_protocols_per_peer: int = MAX_PROTOCOLS_PER_PEER,
    ) -> None:
        self._clock = clock
        self._max_addrs = max_addrs_per_peer
        self._max_protocols = max_protocols_per_peer
        self.max_peers = max_peers
        # address -> (expiry, the TTL it was last given)
        self._addrs: dict[PeerId, dict[Multiaddr, tuple[float, float]]] = {}
        self._keys: dict[PeerId, PublicKey] = {}
        self._protocols: dict[PeerId, list[str]] = {}
        self._meta: dict[PeerId, dict[str, object]] = {}

    def add_addrs(self, peer: PeerId, addrs: Sequence[Multiaddr], ttl: float) -> None:
        table = self._addrs.setdefault(peer, {})
        expiry = self._clock() + ttl
        for addr in addrs:
            old = table.get(addr)
            if old is None or old[0] < expiry:  # only ever extend an address's life
                table[addr] = (expiry, ttl)
        if len(table) > self._max_addrs:
            dropped = {
                addr
                for addr, _ in sorted(table.items(), key=lambda kv: kv[1][0])[
                    : len(table) - self._max_addrs
                ]
            }
            # A new dict, not deletions: a dict keeps the size of its largest content,
            # and a peer announcing thousands of addresses would leave a table sized for
            # all of them (70 KiB for 1,500) for as long as the peer is remembered.
            self._addrs[peer] = {a: v for a, v in table.items() if a not in dropped}

    def update_addrs(self, peer: PeerId, old_ttl: float, new_ttl: float) -> None:
        table = self._addrs.get(peer)
        if not table:
            return
        expiry = self._clock() + new_ttl
        for addr, (_, ttl) in list(table.items()):
            if ttl == old_ttl:
                table[addr] = (expiry, new_ttl)

    def addrs(self, peer: PeerId) -> list[Multiaddr]:
        table = self._addrs.get(peer)
        if not table:
            return []
        now = self._clock()
        for addr in [a for a, (exp, _) in table.items() if exp <= now]:
            del table[addr]
        return list(table)

    def clear_addrs(self, peer: PeerId) -> None:
        self._addrs.pop(peer, None)

    def add_public_key(self, peer: PeerId, key: PublicKey) -> None:
        self._keys[peer] = key

    def public_key(self, peer: PeerId) -> PublicKey | None:
        key = self._keys.get(peer)
        if key is None:
            key = peer.extract_public_key()
        return key

    def set_protocols(self, peer: PeerId, protocols: Sequence[str]) -> None:
        self._protocols[peer] = bound_protocols(protocols, self._max_protocols)

    def protocols(self, peer: PeerId) -> list[str]:
        return list(self._protocols.get(peer, ()))

    def put_metadata(self, peer: PeerId, key: str, value: object) -> None:
        self._meta.setdefault(peer, {})[key] = value

    def get_metadata(self, peer: PeerId, key: str) -> object | None:
        return self._meta.get(peer, {}).get(key)

    def peers(self) -> list[PeerId]:
        return list({*self._addrs, *self._keys, *self._protocols, *self._meta})

    def remove_peer(self, peer: PeerId) -> None:
        for table in (self._addrs, self._keys, self._protocols, self._meta):
            table.pop(peer, None)

    def collect(self, keep: Callable[[PeerId], bool]) -> int:
        now = self._clock()
        last_expiry: dict[PeerId, float] = {}
        for peer, table in list(self._addrs.items()):
            for addr in [a for a, (exp, _) in table.items() if exp <= now]:
                del table[addr]
            if table:
                last_expiry[peer] = max(exp for exp, _ in table.values())
            else:
                del self._addrs[peer]
        forgotten = 0
        unkept: list[tuple[float, PeerId]] = []
        for peer in self.peers():
            if keep(peer):
                continue
            expiry = last_expiry.get(peer)
            if expiry is None:
                self.remove_peer(peer)
                forgotten += 1
            else:
                unkept.append((expiry, peer))
        excess = len(unkept) - self.max_peers
        if excess > 0:
            unkept.sort(key=lambda item: item[0])
            for _, peer in unkept[:excess]:
                self.remove_peer(peer)
            forgotten += excess
        return forgotten
