"""Reusable test classes: one security x muxer combination, both directions.

A test module subclasses these with SECURITY / MUXER set (pytest collects only
the `Test*` subclasses). One js listener and one p2pkit listener are started per
class (class-scoped fixtures) and reused by its tests, which keeps the whole
interop run within a few minutes on two cores.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

import pytest

from . import checks
from .harness import LOOPBACK, JsPeer, P2pkitListener

MANY_STREAMS = 100


class Listeners:
    """One js and one p2pkit listener per test class, started on first use."""

    SECURITY: ClassVar[str]
    MUXER: ClassVar[str]
    #: the address both listeners listen on (checks.QUIC classes: a /udp/0/quic-v1 one)
    LISTEN: ClassVar[str] = LOOPBACK
    # extra arguments for the listeners, e.g. ("--no-early-muxer",) for the js one
    JS_LISTEN_EXTRA: ClassVar[tuple[str, ...]] = ()
    P2PKIT_LISTEN_EXTRA: ClassVar[tuple[str, ...]] = ()

    @pytest.fixture(scope="class")
    @classmethod
    def js(cls) -> Iterator[JsPeer]:
        quic = cls.SECURITY == checks.QUIC
        with JsPeer(
            None if quic else cls.SECURITY,
            None if quic else cls.MUXER,
            *cls.JS_LISTEN_EXTRA,
            listen=cls.LISTEN,
        ) as peer:
            yield peer

    @pytest.fixture(scope="class")
    @classmethod
    def p2p(cls) -> Iterator[P2pkitListener]:
        quic = cls.SECURITY == checks.QUIC
        with P2pkitListener(
            None if quic else cls.SECURITY,
            None if quic else cls.MUXER,
            *cls.P2PKIT_LISTEN_EXTRA,
            listen=cls.LISTEN,
        ) as peer:
            yield peer


class InteropSuite(Listeners):
    """ping, echo with half-close (10 kB) and 100 concurrent echo streams, both directions."""

    # -- p2pkit dials js

    def test_p2pkit_pings_js(self, js: JsPeer) -> None:
        checks.p2pkit_ping(js, self.SECURITY, self.MUXER)

    def test_p2pkit_echo_half_close_js(self, js: JsPeer) -> None:
        """Small enough that data and FIN may leave before js confirmed the protocol."""
        checks.p2pkit_echo(js, self.SECURITY, self.MUXER, streams=1, nbytes=10_000)

    def test_p2pkit_echo_100_streams_js(self, js: JsPeer) -> None:
        checks.p2pkit_echo(js, self.SECURITY, self.MUXER, streams=MANY_STREAMS, nbytes=4096)

    # -- js dials p2pkit

    def test_js_pings_p2pkit(self, p2p: P2pkitListener) -> None:
        checks.js_ping(p2p, self.SECURITY, self.MUXER)

    def test_js_echo_half_close_p2pkit(self, p2p: P2pkitListener) -> None:
        checks.js_echo(p2p, self.SECURITY, self.MUXER, 1, 10_000)

    def test_js_echo_100_streams_p2pkit(self, p2p: P2pkitListener) -> None:
        checks.js_echo(p2p, self.SECURITY, self.MUXER, MANY_STREAMS, 4096)


class ExtraOps(Listeners):
    """perf both ways, a medium echo (several frames, window updates) and an echo
    stream half-closed before anything was written."""

    def test_p2pkit_echo_300k_js(self, js: JsPeer) -> None:
        checks.p2pkit_echo(js, self.SECURITY, self.MUXER, streams=1, nbytes=300_000)

    def test_js_echo_300k_p2pkit(self, p2p: P2pkitListener) -> None:
        checks.js_echo(p2p, self.SECURITY, self.MUXER, 1, 300_000)

    def test_p2pkit_perf_js(self, js: JsPeer) -> None:
        checks.p2pkit_perf(js, self.SECURITY, self.MUXER, up=2_000_000, down=2_000_000)

    def test_js_perf_p2pkit(self, p2p: P2pkitListener) -> None:
        checks.js_perf(p2p, self.SECURITY, self.MUXER, up=2_000_000, down=2_000_000)

    def test_js_echo_empty_p2pkit(self, p2p: P2pkitListener) -> None:
        """Half-close with nothing written: p2pkit must answer EOF with EOF."""
        checks.js_echo(p2p, self.SECURITY, self.MUXER, 1, 0)


class BigTransfers(Listeners):
    """64 MiB through one stream, once per direction, checked by sha256."""

    @pytest.mark.timeout(checks.BIG_TIMEOUT + 30)
    def test_p2pkit_echo_64mib_js(self, js: JsPeer) -> None:
        checks.p2pkit_echo(js, self.SECURITY, self.MUXER, 1, checks.BIG, timeout=checks.BIG_TIMEOUT)

    @pytest.mark.timeout(checks.BIG_TIMEOUT + 30)
    def test_js_transfer_64mib_p2pkit(self, p2p: P2pkitListener) -> None:
        checks.js_transfer(p2p, self.SECURITY, self.MUXER)
