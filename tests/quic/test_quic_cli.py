"""The command line over QUIC, run as a user would: ``p2pkit listen --listen
/ip4/127.0.0.1/udp/0/quic-v1`` in a subprocess, then ``ping``, ``echo``, ``perf`` and
``identify`` against it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.cli import cli_process, run


@pytest.fixture
def quic_listener() -> Iterator[str]:
    with cli_process("listen", "--listen", "/ip4/127.0.0.1/udp/0/quic-v1") as proc:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("LISTEN "), proc.stderr.read() if proc.stderr else line
        yield line.split()[1]


def test_cli_over_quic(quic_listener):
    addr = quic_listener
    assert "/udp/" in addr and "/quic-v1/p2p/" in addr
    ping = run("ping", addr, "--count", "3", "--json")
    assert len(ping["rtt_ms"]) == 3 and ping["median_ms"] > 0
    echo = run("echo", addr, "--streams", "10", "--bytes", "100000", "--json")
    assert echo["ok"] is True and echo["streams"] == 10
    perf = run("perf", addr, "--upload", "5000000", "--download", "7000000", "--json")
    assert perf["upload_bytes"] == 5000000 and perf["download_bytes"] == 7000000
    ident = run("identify", addr, "--json")
    assert "/ipfs/ping/1.0.0" in ident["protocols"]
    assert ident["observed_addr"].startswith("/ip4/127.0.0.1/udp/")
    assert ident["observed_addr"].endswith("/quic-v1")
