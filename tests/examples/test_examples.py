"""The examples a newcomer runs (top README, "Learn by example"), run as they would run
them: subprocesses, bounded in time, checked on what they print.  The third-party plugin
example (``examples/plugin-unix``) has its own tests in ``tests/unix``."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
TIMEOUT = 30  # under the suite's per-test limit


def run_example(name: str, *args: str) -> str:
    out = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        stdin=subprocess.DEVNULL,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


@contextmanager
def background(name: str, *args: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """An example that prints ``LISTEN <address>`` first; yields it and that address."""
    proc = subprocess.Popen(
        [sys.executable, str(EXAMPLES / name), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # bounded: the process prints it or dies
        assert line.startswith("LISTEN "), line + (proc.stderr.read() if proc.stderr else "")
        yield proc, line.split()[1]
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for f in (proc.stdin, proc.stdout, proc.stderr):
            if f:
                f.close()


def test_chat_demo() -> None:
    lines = run_example("chat.py").splitlines()
    assert lines[0].startswith("alice listens on /ip4/127.0.0.1/tcp/")
    assert lines[1:5] == [
        "bob: hi alice, bob here",
        "bob: this is my stream to you",
        "alice: hello bob!",
        "alice: and this one is mine to you",
    ]
    assert lines[5] == "chat over /noise + /yamux/1.0.0: done"


def test_chat_both_ways_between_two_processes() -> None:
    with background("chat.py", "listen") as (listener, addr):
        dialer = subprocess.Popen(
            [sys.executable, str(EXAMPLES / "chat.py"), "dial", addr],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert dialer.stdin is not None and listener.stdin is not None
            assert listener.stdout is not None
            dialer.stdin.write("hello from the dialer\n")
            dialer.stdin.flush()
            assert listener.stdout.readline().startswith("waiting for a peer")
            assert listener.stdout.readline() == "peer: hello from the dialer\n"
            listener.stdin.write("hello from the listener\n")
            listener.stdin.close()  # end of the listener's input: its stream closes
            dialer.stdin.close()
            dialer_out = dialer.stdout.read() if dialer.stdout else ""
            assert dialer.wait(TIMEOUT) == 0
            assert listener.wait(TIMEOUT) == 0
        finally:
            if dialer.poll() is None:
                dialer.kill()
            for f in (dialer.stdout, dialer.stderr):
                if f:
                    f.close()
    assert dialer_out == "peer: hello from the listener\n"


def test_file_transfer_demo() -> None:
    out = run_example("file_transfer.py")
    assert "receiver listens on /ip4/127.0.0.1/tcp/" in out
    assert "sent random.bin 100% (8.0 MB" in out
    assert "\nsha256 ok: " in out


def test_file_transfer_between_processes_from_a_toml_file(tmp_path: Path) -> None:
    """Another configuration file (TLS + Mplex on uvloop): both ends follow it."""
    config = tmp_path / "transfer.toml"
    config.write_text(
        "[p2pkit]\n"
        'listen = ["/ip4/127.0.0.1/tcp/0"]\n'
        'security = ["tls"]\n'
        'muxers = ["mplex"]\n'
        'event_loop = "uvloop"\n'
        "[file_transfer]\n"
        "chunk_size = 65536\n"
    )
    src = tmp_path / "data.bin"
    payload = os.urandom(3_000_000)
    src.write_bytes(payload)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    with background("file_transfer.py", "receive", str(inbox), "--config", str(config)) as (
        receiver,
        addr,
    ):
        out = run_example("file_transfer.py", "send", addr, str(src), "--config", str(config))
        assert "sent data.bin 100% (3.0 MB" in out
        assert f"sha256 ok: {hashlib.sha256(payload).hexdigest()}" in out
        assert receiver.stdout is not None
        for _ in range(20):  # its progress lines, then where it saved the file
            line = receiver.stdout.readline()
            if line.startswith("saved ") or not line:
                break
        assert line.startswith(f"saved {inbox / 'data.bin'}"), line
    assert (inbox / "data.bin").read_bytes() == payload


def test_custom_protocol_demo() -> None:
    lines = run_example("custom_protocol.py").splitlines()
    assert lines[0].startswith("kv server on /ip4/127.0.0.1/tcp/")
    assert lines[1:] == [
        "get greeting -> 'hello'",
        "get answer -> '42'",
        "delete answer -> True",
        "get answer -> None",
        "put big -> refused: message of 65576 bytes is over the 65536 limit",
        "server holds ['greeting']",
    ]
