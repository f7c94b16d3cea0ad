"""Signed peer records: RFC 0002 envelopes holding RFC 0003 peer records.

Identify carries one (our listen addresses, signed with our key), as go- and js-libp2p
do; a received one is verified (signature, signer = record's peer) before its addresses
are trusted.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections import OrderedDict
from collections.abc import Sequence

from multiaddr import Multiaddr

from p2pkit.addrs import to_multiaddr
from p2pkit.crypto import PrivateKey, public_key_from_protobuf
from p2pkit.errors import AddressError, P2PError, ProtocolError
from p2pkit.peer import PeerId
from p2pkit.peerstore import MAX_ADDRS_PER_PEER
from p2pkit.protobuf import decode_fields, encode_bytes_field, encode_varint_field
from p2pkit.varint import encode_uvarint

#: RFC 0003 peer record: signature domain and envelope payload type (multicodec 0x0301,
#: written as the two bytes go- and js-libp2p use).
PEER_RECORD_DOMAIN = b"libp2p-peer-record"
PEER_RECORD_PAYLOAD_TYPE = b"\x03\x01"

MAX_RECORD_ADDRS = MAX_ADDRS_PER_PEER
"""Addresses decoded of a record (its first entries; malformed ones are skipped): what
a peerstore keeps per peer anyway.  An envelope in a 64 KiB identify message can list
some 5,000; kept whole, their multiaddrs cost ~250 KiB per record in the
verified-records cache and again as the peer's ``CertifiedAddrs``.  go-libp2p's
identify likewise keeps at most 500 (``connectedPeerMaxAddrs``) of a record's
addresses."""
MAX_CACHED_ENVELOPE = 8 * 1024
"""Envelopes larger than this are verified every time rather than remembered: go- and
js-libp2p send and accept identify messages of at most 8 KiB (go's ``signedIDSize``),
so no usual peer's envelope is larger, and the cache stays within 256 x 8 KiB."""


def _signing_bytes(domain: bytes, payload_type: bytes, payload: bytes) -> bytes:
    return b"".join(encode_uvarint(len(x)) + x for x in (domain, payload_type, payload))


def make_signed_peer_record(
    key: PrivateKey, peer: PeerId, addrs: Sequence[Multiaddr], seq: int
) -> bytes:
    """Encode a signed envelope holding our peer record."""
    record = encode_bytes_field(1, peer.to_bytes()) + encode_varint_field(2, seq)
    for addr in addrs:
        record += encode_bytes_field(3, encode_bytes_field(1, addr.to_bytes()))
    signature = key.sign(_signing_bytes(PEER_RECORD_DOMAIN, PEER_RECORD_PAYLOAD_TYPE, record))
    return (
        encode_bytes_field(1, key.public_key.to_protobuf())
        + encode_bytes_field(2, PEER_RECORD_PAYLOAD_TYPE)
        + encode_bytes_field(3, record)
        + encode_bytes_field(5, signature)
    )


@dataclasses.dataclass
class PeerRecord:
    peer: PeerId
    seq: int
    addrs: list[Multiaddr]


def open_signed_peer_record(envelope: bytes) -> PeerRecord:
    """Verify an envelope and decode its peer record (at most :data:`MAX_RECORD_ADDRS`
    addresses); ProtocolError when invalid."""
    try:
        env = decode_fields(envelope)
        key_raw, ptype, payload, sig = (env[i][-1] for i in (1, 2, 3, 5))
        if not all(isinstance(x, bytes) for x in (key_raw, ptype, payload, sig)):
            raise ValueError("wrong wire types")
        assert isinstance(key_raw, bytes) and isinstance(ptype, bytes)
        assert isinstance(payload, bytes) and isinstance(sig, bytes)
        key = public_key_from_protobuf(key_raw)
    except (KeyError, ValueError, P2PError) as exc:
        raise ProtocolError(f"signed peer record: malformed envelope: {exc}") from exc
    if ptype != PEER_RECORD_PAYLOAD_TYPE:
        raise ProtocolError(f"signed peer record: payload type {ptype.hex()} is not 0301")
    if not key.verify(_signing_bytes(PEER_RECORD_DOMAIN, ptype, payload), sig):
        raise ProtocolError("signed peer record: bad signature")
    try:
        rec = decode_fields(payload)
        peer_raw = rec[1][-1]
        seq = rec.get(2, [0])[-1]
        if not isinstance(peer_raw, bytes) or not isinstance(seq, int):
            raise ValueError("wrong wire types")
        peer = PeerId.from_bytes(peer_raw)
        addrs: list[Multiaddr] = []
        # The first entries only, malformed ones counted: decoding one takes ~20 us, and
        # an envelope over the cache's size is verified and decoded at every push.
        for info in rec.get(3, [])[:MAX_RECORD_ADDRS]:
            if isinstance(info, bytes):
                raw = decode_fields(info).get(1, [b""])[-1]
                if isinstance(raw, bytes):
                    with contextlib.suppress(AddressError):  # skipped, as go does
                        addrs.append(to_multiaddr(raw))
    except (KeyError, ValueError, P2PError) as exc:
        raise ProtocolError(f"signed peer record: malformed record: {exc}") from exc
    if PeerId.from_public_key(key) != peer:
        raise ProtocolError("signed peer record: signer is not the record's peer")
    return PeerRecord(peer, seq, addrs)


class VerifiedRecords:
    """:func:`open_signed_peer_record`, remembered for envelopes already verified.

    Every identify carries the peer's envelope, and a peer sends the same bytes on every
    connection until its addresses change: verifying it again (an Ed25519 check and
    multiaddr parsing, ~80 us, about half of what identify costs a host per connection)
    would give the same answer, since the result depends only on the bytes.  Only
    envelopes that verified are kept, and only those of at most
    :data:`MAX_CACHED_ENVELOPE` bytes; bounded, least recently used out, so a peer
    sending ever new envelopes costs what it did before.
    """

    def __init__(self, max_entries: int = 256) -> None:
        self.max_entries = max_entries
        self._records: OrderedDict[bytes, PeerRecord] = OrderedDict()

    def open(self, envelope: bytes) -> PeerRecord:
        """The envelope's record (a copy: callers may change it); ProtocolError when
        invalid, as :func:`open_signed_peer_record`."""
        record = self._records.get(envelope)
        if record is None:
            record = open_signed_peer_record(envelope)
            if len(envelope) > MAX_CACHED_ENVELOPE:
                return record  # a fresh object: the caller may change it
            self._records[envelope] = record
            if len(self._records) > self.max_entries:
                self._records.popitem(last=False)
        else:
            self._records.move_to_end(envelope)
        return dataclasses.replace(record, addrs=list(record.addrs))

    def __len__(self) -> int:
        return len(self._records)


__all__ = [
    "MAX_CACHED_ENVELOPE",
    "MAX_RECORD_ADDRS",
    "PEER_RECORD_DOMAIN",
    "PEER_RECORD_PAYLOAD_TYPE",
    "PeerRecord",
    "VerifiedRecords",
    "make_signed_peer_record",
    "open_signed_peer_record",
]
