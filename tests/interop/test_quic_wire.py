"""What js-libp2p's QUIC listener (@chainsafe/libp2p-quic, quinn underneath) does on the
wire, seen by a bare aioquic client (`quic_probe.py`), next to the same probe of a
p2pkit listener: the facts docs/interop.md records, kept true by these tests.

Each assertion is about the remote's own choices (ALPN, certificate, transport
parameters, datagram sizes, how streams end, how a missing client certificate is
refused), so a change in the pinned js package or in p2pkit-quic shows up here first.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from .harness import LOOPBACK_QUIC, JsPeer, P2pkitListener, strip_p2p
from .quic_probe import (
    CERTIFICATE_REQUIRED,
    LIBP2P_EXTENSION,
    Probe,
    probe_listener,
    probe_without_client_certificate,
)

pytestmark = pytest.mark.interop


def _port(maddr: str) -> int:
    return int(strip_p2p(maddr).split("/udp/", 1)[1].split("/", 1)[0])


def _probe(maddr: str) -> Probe:
    return asyncio.run(probe_listener("127.0.0.1", _port(maddr)))


@pytest.fixture(scope="module")
def js() -> Iterator[JsPeer]:
    with JsPeer(None, None, listen=LOOPBACK_QUIC) as peer:
        yield peer


@pytest.fixture(scope="module")
def p2p() -> Iterator[P2pkitListener]:
    with P2pkitListener(None, None, listen=LOOPBACK_QUIC) as peer:
        yield peer


def _common(probe: Probe, peer_id: str) -> None:
    """What every libp2p QUIC listener must do (libp2p/specs quic and tls)."""
    assert probe.alpn == "libp2p"
    assert probe.peer_id == peer_id  # the libp2p extension verified, identity matches
    assert probe.certificate["extensions"][0] == LIBP2P_EXTENSION
    assert probe.closed is None, probe.closed
    perf, echo = probe.streams[0], probe.streams[4]
    assert (len(perf.data), perf.fin) == (1_000_000, True)  # perf: n bytes, then FIN
    assert (echo.data, echo.fin) == (b"hello", True)  # echo answers our FIN with its own


def test_js_listener_wire(js: JsPeer) -> None:
    probe = _probe(js.maddr)
    _common(probe, js.peer_id)
    cert = probe.certificate
    assert cert["key"] == "secp256r1" and cert["signature_hash"] == "sha256"
    assert cert["libp2p_extension_critical"] is True
    assert cert["extensions"] == [LIBP2P_EXTENSION]  # nothing else
    assert cert["subject"] == ""  # empty subject and issuer
    assert cert["valid_days_before"] > 365 * 50  # rust-libp2p: 1975 ...
    assert cert["valid_days_after"] > 365 * 1000  # ... to 4096
    params = probe.transport_parameters
    assert params["max_idle_timeout"] == 10_000  # ms; js keep-alive every 5 s
    assert params["max_udp_payload_size"] == 1472
    assert params["initial_max_data"] == 15_000_000
    assert params["initial_max_stream_data_bidi_remote"] == 10_000_000
    assert params["initial_max_streams_bidi"] == 1024  # the peer's maxConcurrentStreamLimit
    assert params.get("initial_max_streams_uni", 0) == 0  # libp2p uses no uni streams
    # js sends QUIC's minimum datagram size only (no path MTU growth within 1 MB)
    assert probe.max_datagram <= 1200
    js.assert_alive()


def test_js_refuses_a_client_without_certificate(js: JsPeer) -> None:
    probe = asyncio.run(probe_without_client_certificate("127.0.0.1", _port(js.maddr)))
    assert probe.closed is not None
    assert probe.closed["error_code"] == CERTIFICATE_REQUIRED, probe.closed
    js.assert_alive()


def test_p2pkit_listener_wire(p2p: P2pkitListener) -> None:
    """The same probe against p2pkit-quic: it keeps the rules js keeps, and answers a
    reset (RESET_STREAM + STOP_SENDING) with its own RESET_STREAM."""
    probe = _probe(p2p.maddr)
    _common(probe, p2p.peer_id)
    assert probe.certificate["libp2p_extension_critical"] is True
    params = probe.transport_parameters
    assert params.get("initial_max_streams_uni", 0) == 0
    assert params["max_idle_timeout"] > 0
    reset = probe.streams[8]
    assert reset.reset_code is not None, reset
    p2p.assert_alive()


def test_p2pkit_refuses_a_client_without_certificate(p2p: P2pkitListener) -> None:
    probe = asyncio.run(probe_without_client_certificate("127.0.0.1", _port(p2p.maddr)))
    assert probe.closed is not None
    assert probe.closed["error_code"] == CERTIFICATE_REQUIRED, probe.closed
    p2p.assert_alive()
