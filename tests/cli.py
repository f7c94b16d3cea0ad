"""Running the ``p2pkit`` command line as a user would, for the CLI tests of several
folders (tests/core, tests/quic, tests/prometheus): one-shot commands, and a
long-running ``p2pkit listen`` that is always stopped and reaped."""

from __future__ import annotations

import contextlib
import json
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

CLI = [sys.executable, "-m", "p2pkit"]


def run(*args: str, timeout: float = 60) -> dict:
    """``p2pkit <args>`` (with ``--json``): its exit code must be 0; its stdout, parsed."""
    out = subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def next_line(proc: subprocess.Popen[str], prefix: str, timeout: float = 30) -> str:
    """The next stdout line starting with ``prefix`` (bounded in time)."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        while (left := deadline - time.monotonic()) > 0:
            if not sel.select(left):
                break
            line = proc.stdout.readline()
            if not line:
                break
            if line.startswith(prefix):
                return line
    raise AssertionError(f"no {prefix!r} line from the listener within {timeout} s")


@contextlib.contextmanager
def cli_process(*args: str, check_exit: bool = True) -> Iterator[subprocess.Popen[str]]:
    """``p2pkit <args>`` running, stdout and stderr piped (text).

    On exit it gets SIGTERM (if still running) and must end within 10 s, with exit code
    0 when ``check_exit`` (a clean shutdown is part of the contract); it is killed if
    it does not, and its pipes are closed either way, so no test leaks a process.
    """
    proc = subprocess.Popen(
        [*CLI, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(10)
            if check_exit:
                assert code == 0
        finally:
            if proc.poll() is None:
                proc.kill()
            for f in (proc.stdout, proc.stderr):
                if f:
                    f.close()
