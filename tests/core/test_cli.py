"""The command line contract (the top README, "Command line"), run as a user would: subprocesses."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator

import pytest

from tests.cli import CLI, cli_process, next_line, run


@pytest.fixture
def listener(tmp_path) -> Iterator[tuple[str, str, subprocess.Popen[str]]]:
    key = tmp_path / "id.pem"
    peer = run("id", "--out", str(key), "--json")["peer_id"]
    with cli_process("listen", "--security", "plaintext,noise", "--identity", str(key)) as proc:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("LISTEN "), proc.stderr.read() if proc.stderr else line
        addr = line.split()[1]
        assert addr.endswith(f"/p2p/{peer}")
        yield addr, peer, proc


def test_ping_echo_perf_identify(listener):
    addr, peer, proc = listener
    sec = ["--security", "plaintext"]
    ping = run("ping", addr, "--count", "3", "--json", *sec)
    assert len(ping["rtt_ms"]) == 3 and ping["median_ms"] > 0
    echo = run("echo", addr, "--streams", "10", "--bytes", "100000", "--json", *sec)
    assert echo["ok"] is True and echo["streams"] == 10 and echo["bytes"] == 100000
    perf = run("perf", addr, "--upload", "5000000", "--download", "7000000", "--json", *sec)
    # What the server counted, not what the client was asked to send.
    served = json.loads(next_line(proc, "PERF ").split(" ", 1)[1])
    assert served == {"upload_bytes": 5000000, "download_bytes": 7000000}
    assert perf["upload_bytes"] == 5000000 and perf["download_bytes"] == 7000000
    assert perf["upload_MBps"] > 0 and perf["download_MBps"] > 0 and perf["connect_ms"] > 0
    ident = run("identify", addr, "--json", *sec)
    assert ident["peer_id"] == peer
    assert ident["agent_version"].startswith("p2pkit/")
    assert "/echo/1.0.0" in ident["protocols"] and "/perf/1.0.0" in ident["protocols"]
    assert ident["observed_addr"].startswith("/ip4/127.0.0.1/tcp/")


def test_byte_counts_take_units(listener):
    """``--upload 1MiB`` as well as ``--upload 1048576`` (k/M/G: powers of 1000)."""
    addr, _, proc = listener
    sec = ["--security", "plaintext"]
    perf = run("perf", addr, "--upload", "1MiB", "--download", "1.5k", "--json", *sec)
    served = json.loads(next_line(proc, "PERF ").split(" ", 1)[1])
    assert served == {"upload_bytes": 1 << 20, "download_bytes": 1500}
    assert perf["upload_bytes"] == 1 << 20 and perf["download_bytes"] == 1500
    echo = run("echo", addr, "--bytes", "64KiB", "--json", *sec)
    assert echo["ok"] is True and echo["bytes"] == 65536
    out = subprocess.run(
        [*CLI, "perf", addr, "--upload", "16XB"], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 2 and "not a byte count" in out.stderr


def test_failure_is_one_line_and_nonzero():
    start = time.monotonic()
    out = subprocess.run(
        [*CLI, "ping", "/ip4/127.0.0.1/tcp/1", "--security", "plaintext"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode != 0
    assert len(out.stderr.strip().splitlines()) == 1 and "DialError" in out.stderr
    assert time.monotonic() - start < 30
    out = subprocess.run([*CLI, "ping", "garbage"], capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and len(out.stderr.strip().splitlines()) == 1


def test_id_key_types(tmp_path):
    for kt, prefix in [("ed25519", "12D3KooW"), ("secp256k1", "16Uiu2"), ("rsa", "Qm")]:
        path = tmp_path / f"{kt}.key"
        got = run("id", "--key-type", kt, "--out", str(path), "--json")
        assert got["peer_id"].startswith(prefix)
        assert os.stat(path).st_mode & 0o777 == 0o600
