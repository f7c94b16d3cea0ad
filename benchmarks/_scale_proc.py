"""What ``scale.py`` reads from /proc, and its line-driven dialer processes.

Why /proc and not psutil or the peers' own reports: the figure is the *listener
process's* resident memory and CPU time as the kernel accounts them, the same way for
a python and a node process, read from outside without touching the process.
"""

from __future__ import annotations

import json
import os
import resource
import selectors
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from _procs import Listener, PeerError, _kill_group

CLK_TCK = os.sysconf("SC_CLK_TCK")


def raise_nofile() -> tuple[int, int]:
    """Raise this process's RLIMIT_NOFILE soft limit to the hard limit (children inherit
    it); returns (soft, hard)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            pass
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def _exe_name(pid: int) -> str:
    try:
        return Path(os.readlink(f"/proc/{pid}/exe")).name
    except OSError:
        return ""


def real_pid(pid: int) -> int:
    """The python/node process itself: follows single children of a wrapper (a shell,
    ``timeout``...) so that RSS is never read from a wrapper."""
    for _ in range(5):
        name = _exe_name(pid)
        if name.startswith(("python", "node")):
            return pid
        try:
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            return pid
        if len(children) != 1:
            return pid
        pid = int(children[0])
    return pid


def status_kib(pid: int) -> dict[str, int]:
    """VmRSS, RssAnon, VmHWM of ``pid`` in KiB (from /proc/<pid>/status)."""
    out: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "RssAnon", "VmHWM"):
            out[key] = int(value.split()[0])
    return out


def rss_kib(pid: int) -> int:
    return status_kib(pid)["VmRSS"]


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` (all its threads), from /proc/<pid>/stat."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()
    # fields[0] is the state (field 3 of the man page): utime and stime are 14 and 15.
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def socket_count(pid: int) -> int:
    """Open sockets of ``pid`` (its listening socket and every connection)."""
    n = 0
    fd_dir = f"/proc/{pid}/fd"
    for fd in os.listdir(fd_dir):
        try:
            if os.readlink(f"{fd_dir}/{fd}").startswith("socket:"):
                n += 1
        except OSError:
            continue
    return n


def mem_available_mib() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) // 1024
    return 0


def drain_stdout(listener: Listener) -> threading.Thread:
    """Read and drop a listener's stdout after its LISTEN line.

    Why: the js peer prints a line per connection and per identify result; nobody reads
    them, so a full pipe would block node's synchronous stdout writes (and the listener
    with it) after a few hundred connections.
    """
    assert listener.proc is not None and listener.proc.stdout is not None
    fd = listener.proc.stdout.fileno()

    def run() -> None:
        while True:
            try:
                if not os.read(fd, 65536):
                    return
            except OSError:
                return

    thread = threading.Thread(target=run, name=f"drain-{listener.name}", daemon=True)
    thread.start()
    return thread


class LineProc:
    """A child process driven by lines: ``send`` to its stdin, ``expect`` a tagged line.

    Runs in its own process group, always killed by :meth:`close`.
    """

    def __init__(self, name: str, argv: Sequence[str], env: dict[str, str], log: Path) -> None:
        self.name = name
        self.log = log
        with log.open("wb") as err:
            self.proc = subprocess.Popen(
                list(argv),
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                start_new_session=True,
            )
        self._buf = b""

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(line.encode() + b"\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError) as exc:
            raise PeerError(f"{self.name}: stdin closed ({exc}); {self._tail()}") from exc

    def _tail(self) -> str:
        try:
            text = self.log.read_text(errors="replace").strip()
        except OSError:
            return "no stderr"
        return "stderr: " + (text[-300:] if text else "(empty)")

    def expect(self, tag: str, timeout: float, poll: Callable[[], str | None] | None = None) -> Any:
        """Wait for a line starting with ``tag``; return its JSON payload (or the rest of
        the line).  ``poll`` runs every half second; a string it returns aborts the wait.
        """
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as sel:
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            while True:
                while b"\n" in self._buf:
                    raw, self._buf = self._buf.split(b"\n", 1)
                    line = raw.decode(errors="replace").strip()
                    if line.startswith(tag):
                        rest = line[len(tag) :].strip()
                        return json.loads(rest) if rest.startswith("{") else rest
                left = deadline - time.monotonic()
                if left <= 0:
                    raise PeerError(f"{self.name}: no {tag} within {timeout:.0f} s")
                if poll is not None:
                    why = poll()
                    if why:
                        raise PeerError(f"{self.name}: stopped waiting for {tag}: {why}")
                if not sel.select(timeout=min(left, 0.5)):
                    continue
                chunk = os.read(self.proc.stdout.fileno(), 65536)
                if not chunk:
                    raise PeerError(
                        f"{self.name}: exited ({self.proc.poll()}) before {tag}; {self._tail()}"
                    )
                self._buf += chunk

    def wait(self, timeout: float) -> int | None:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def close(self) -> None:
        _kill_group(self.proc, grace=1.0)
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                try:
                    pipe.close()
                except OSError:
                    pass
