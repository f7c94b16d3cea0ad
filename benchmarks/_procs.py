"""Subprocess plumbing for ``compare.py``: bounded, always-killed listeners and clients.

Why a module of its own: every benchmark peer is a separate OS process (so each
implementation gets its own interpreter/event loop, as in real use), and every one of
them must be bounded by a timeout and killed even when the benchmark fails half-way.
Listeners run in their own process group so that a wrapper (``node``, a venv python)
cannot leave a child behind.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any


class PeerError(RuntimeError):
    """A benchmark peer failed: bad exit, timeout, unparseable output."""


def _kill_group(proc: subprocess.Popen[bytes], grace: float = 2.0) -> None:
    """SIGTERM the process group, then SIGKILL it if it is still alive after ``grace``."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
    # The leader may be gone while children of the group linger: always SIGKILL the group.
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        pass


class Listener:
    """A peer started in ``listen`` mode; ``addr`` is its first ``LISTEN <maddr>`` line.

    Use as a context manager: the process group is always killed on exit.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        cwd: Path | None,
        env: dict[str, str] | None,
        log_dir: Path,
        start_timeout: float = 30.0,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.cwd = cwd
        self.env = env
        self.start_timeout = start_timeout
        self.stderr_path = log_dir / f"{name}.stderr.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.addr = ""

    def __enter__(self) -> Listener:
        self.stderr_path.parent.mkdir(parents=True, exist_ok=True)
        stderr = self.stderr_path.open("wb")
        try:
            self.proc = subprocess.Popen(
                self.argv,
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=stderr,
                start_new_session=True,
            )
        finally:
            stderr.close()
        try:
            self.addr = self._wait_listen()
        except BaseException:
            self.close()
            raise
        return self

    def _wait_listen(self) -> str:
        assert self.proc is not None and self.proc.stdout is not None
        deadline = time.monotonic() + self.start_timeout
        buf = b""
        with selectors.DefaultSelector() as sel:
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise PeerError(f"{self.name}: no LISTEN line within {self.start_timeout} s")
                if not sel.select(timeout=min(left, 0.5)):
                    if self.proc.poll() is not None:
                        raise PeerError(
                            f"{self.name}: exited {self.proc.returncode} "
                            f"before listening; {self._tail()}"
                        )
                    continue
                chunk = os.read(self.proc.stdout.fileno(), 65536)
                if not chunk:
                    raise PeerError(f"{self.name}: stdout closed before LISTEN; {self._tail()}")
                buf += chunk
                for line in buf.decode(errors="replace").splitlines():
                    if line.startswith("LISTEN ") and "/ip4/127.0.0.1/" in line:
                        return line.split(None, 1)[1].strip()

    def _tail(self) -> str:
        try:
            text = self.stderr_path.read_text(errors="replace").strip()
        except OSError:
            return "no stderr"
        return "stderr: " + (text[-400:] if text else "(empty)")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def death(self) -> str:
        """Why a dead listener ended: exit status (or signal) and the tail of its stderr.

        A listener that exits 0 on its own was sent SIGTERM/SIGINT by someone else.
        """
        code = None if self.proc is None else self.proc.poll()
        if code is None:
            how = "still running"
        elif code < 0:
            how = f"killed by signal {-code}"
        else:
            how = f"exit {code}" + (" (SIGTERM/SIGINT from outside?)" if code == 0 else "")
        return f"{how}; {self._tail()}"

    def close(self) -> None:
        if self.proc is not None:
            _kill_group(self.proc)
            if self.proc.stdout is not None:
                self.proc.stdout.close()

    def __exit__(self, *exc: object) -> None:
        self.close()


def run_json(
    name: str,
    argv: Sequence[str],
    *,
    cwd: Path | None,
    env: dict[str, str] | None,
    timeout: float,
) -> dict[str, Any]:
    """Run a client to completion (bounded by ``timeout``) and parse its last JSON line."""
    proc = subprocess.Popen(
        list(argv),
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise PeerError(f"{name}: timed out after {timeout:.0f} s") from exc
    finally:
        _kill_group(proc, grace=0.5)
    text = out.decode(errors="replace")
    if proc.returncode != 0:
        tail = err.decode(errors="replace").strip().splitlines()[-3:]
        raise PeerError(f"{name}: exit {proc.returncode}: {' | '.join(tail) or '(no stderr)'}")
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(obj, dict):
                return obj
    raise PeerError(f"{name}: no JSON object on stdout: {text[-200:]!r}")
