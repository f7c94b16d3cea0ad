"""The command line for operators and people (README "Command line"): JSON logs, the
event loop, ``perf --duration``, units and the stack in human output, and a progress
line only on a terminal (a real pseudo-terminal from :mod:`pty`), never with ``--json``.
Subprocesses over loopback, with the default stack (TCP + Noise + Yamux)."""

from __future__ import annotations

import json
import os
import pty
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from tests.cli import CLI, cli_process, next_line

STACK = "tcp + /noise + /yamux/1.0.0"


@pytest.fixture
def listener() -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """``p2pkit listen`` on uvloop, logging at debug as JSON."""
    args = ("--event-loop", "uvloop", "--log-level", "debug", "--log-format", "json")
    with cli_process("listen", *args, check_exit=False) as proc:
        line = next_line(proc, "LISTEN ")
        yield line.split()[1], proc


def run_on_pty(*args: str, timeout: float = 60) -> tuple[int, str, str]:
    """Run the CLI with stderr on a pseudo-terminal: (exit code, stdout, terminal text)."""
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(
            [*CLI, *args], stdout=subprocess.PIPE, stderr=slave, stdin=subprocess.DEVNULL
        )
    finally:
        os.close(slave)
    seen = b""
    deadline = time.monotonic() + timeout
    try:
        with selectors.DefaultSelector() as sel:
            sel.register(master, selectors.EVENT_READ)
            while (left := deadline - time.monotonic()) > 0:
                if not sel.select(min(left, 1.0)):
                    if proc.poll() is not None:
                        break
                    continue
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: the child closed its end
                    break
                if not chunk:
                    break
                seen += chunk
        out, _ = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, out.decode(), seen.decode(errors="replace")


def test_json_logs_event_loop_and_timed_perf(listener: tuple[str, subprocess.Popen[str]]) -> None:
    addr, proc = listener
    out = subprocess.run(
        [*CLI, "perf", addr, "--duration", "0.3", "--json", "--event-loop", "uvloop"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""
    result = json.loads(out.stdout)
    assert result["upload_bytes"] > 0 and result["download_bytes"] > 0
    assert result["upload_seconds"] >= 0.3 and result["download_seconds"] >= 0.3
    served = json.loads(next_line(proc, "PERF ").split(" ", 1)[1])
    assert served["upload_bytes"] == result["upload_bytes"]  # whole blocks, all arrived
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(10) == 0
    assert proc.stderr is not None
    lines = proc.stderr.read().splitlines()
    objs = [json.loads(line) for line in lines]  # every line is one JSON object
    assert objs, "debug logging produced nothing"
    for obj in objs:
        assert {"time", "level", "logger", "message"} <= set(obj), obj
        assert obj["logger"].startswith("p2pkit.") or obj["level"] != "debug", obj
    # the timed download ends with a reset: a line about that peer, id in full and short
    about_peer = [o for o in objs if "peer" in o]
    assert about_peer and about_peer[0]["peer"][:8] in about_peer[0]["message"]


def test_human_output_has_units_and_stack(listener: tuple[str, subprocess.Popen[str]]) -> None:
    addr, _ = listener
    out = subprocess.run(
        [*CLI, "perf", addr, "--upload", "3000000", "--download", "2000000"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""  # not a terminal: no progress line
    text = out.stdout
    assert f" ms over {STACK}" in text, text
    assert "upload   3.0 MB in " in text and "download 2.0 MB in " in text, text
    assert text.count(" MB/s") == 2, text
    out = subprocess.run(
        [*CLI, "echo", addr, "--streams", "4", "--bytes", "250000"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0 and out.stderr == "", out.stderr
    assert STACK in out.stdout and "1.0 MB each way" in out.stdout and " MB/s)" in out.stdout


def test_progress_only_on_a_terminal_and_never_with_json(
    listener: tuple[str, subprocess.Popen[str]],
) -> None:
    addr, _ = listener
    code, out, tty = run_on_pty("perf", addr, "--upload", "20000000", "--download", "20000000")
    assert code == 0, tty
    assert "perf upload:" in tty and "MB/s" in tty, tty
    assert "\r" in tty and "perf upload" not in out  # the line is redrawn on stderr only
    code, out, tty = run_on_pty("echo", addr, "--streams", "8", "--bytes", "100000")
    assert code == 0 and "echo: " in tty and "streams done" in tty, tty
    code, out, tty = run_on_pty("perf", addr, "--upload", "20000000", "--json")
    assert code == 0 and tty == "", tty
    assert json.loads(out)["upload_bytes"] == 20000000


def test_argument_errors() -> None:
    for args in (
        ["--duration", "1", "--upload", "5"],
        ["--direction", "upload"],
        ["--duration", "-1"],
    ):
        argv = [*CLI, "perf", "/ip4/127.0.0.1/tcp/1", *args]
        out = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        assert out.returncode == 2 and "usage:" in out.stderr, (args, out.stderr)
    out = subprocess.run(
        [*CLI, "ping", "/ip4/127.0.0.1/tcp/1", "--log-format", "xml"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2 and "--log-format" in out.stderr


def test_uvloop_asked_for_but_missing() -> None:
    code = (
        "import sys; sys.modules['uvloop'] = None\n"
        "from p2pkit.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, "ping", "/ip4/127.0.0.1/tcp/1", "--event-loop", "uvloop"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 1
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert 'pip install "p2pkit[uvloop]"' in out.stderr
