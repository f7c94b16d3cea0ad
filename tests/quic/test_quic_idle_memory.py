"""What an idle, established QUIC connection holds (the README's "Memory and CPU per idle
connection"): each structure that is shared, created lazily or dropped, and that the
connection still behaves after it.  The two machines of a connection are driven by hand
(sans-IO), as in ``test_quic_release.py``."""

from __future__ import annotations

from p2pkit_quic.machine import Libp2pQuicConnection
from tests.quic.test_quic_release import _exchange, _handshake

AIOQUIC_ATTRIBUTES = 85
"""What aioquic's constructor puts in a connection's instance dict: the most a 128-entry
dict table holds (one more and CPython doubles the table)."""


def test_our_attributes_stay_out_of_aioquics_instance_dict():
    client, server, _, _ = _handshake()
    assert _exchange(client, server, b"ping") == b"ping"
    ours = set(Libp2pQuicConnection.__slots__)
    for side in (client, server):
        assert not ours & set(vars(side)), "an attribute of ours landed in the dict"
        assert len(vars(side)) <= AIOQUIC_ATTRIBUTES
        assert side.remote_public_key is not None and side.consumed == 0
