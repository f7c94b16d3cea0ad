"""Process harness for the p2pkit <-> js-libp2p interop tests.

Both peers are driven as separate processes through their command lines (the
interop contract), never imported: `node js/peer.mjs ...` for js-libp2p and
`python -m p2pkit ...` (with the interpreter running pytest, so whatever venv
runs the tests is the one tested) for p2pkit.

Every process is bounded in time, all its output is captured, and that output
is printed (pytest shows it for failing tests) or put into the failure message.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, NoReturn

import pytest

JS_DIR = Path(__file__).resolve().parent / "js"
JS_PEER = JS_DIR / "peer.mjs"
LISTEN_TIMEOUT = 30.0
TERM_GRACE = 5.0
NPM_CI_TIMEOUT = 600.0
STAMP = JS_DIR / "node_modules" / ".p2pkit-interop-stamp"

MiB = 1024 * 1024
LOOPBACK = "/ip4/127.0.0.1/tcp/0"
LOOPBACK_QUIC = "/ip4/127.0.0.1/udp/0/quic-v1"


# ---------------------------------------------------------------- node / npm


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def node_binary() -> str:
    """Path of `node`; skip (locally) or fail (CI=true) when node/npm are missing."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        missing = " and ".join(n for n, p in (("node", node), ("npm", npm)) if p is None)
        msg = f"interop tests need Node.js: {missing} not found on PATH"
        if in_ci():
            pytest.fail(msg + " (CI=true: interop must run in CI)", pytrace=False)
        pytest.skip(msg)
    return node


def _install_stamp(node: str, folder: Path) -> str:
    """What the installed node_modules must match: the lock file and node's version."""
    lock = (folder / "package-lock.json").read_bytes()
    version = subprocess.run(
        [node, "--version"], capture_output=True, text=True, timeout=30, check=True
    ).stdout.strip()
    return f"{hashlib.sha256(lock).hexdigest()} node {version}\n"


def npm_ci_once(folder: Path, stamp: Path) -> str:
    """Run `npm ci` in ``folder`` unless its node_modules already matches its
    package-lock.json (recorded in the ``stamp`` file); returns the node binary.

    `npm ci` is bounded by NPM_CI_TIMEOUT; a failed install fails the session's tests
    with npm's output.  Used for this folder's js peer and for tests/browser.
    """
    node = node_binary()
    want = _install_stamp(node, folder)
    if stamp.exists() and stamp.read_text() == want:
        return node
    npm = shutil.which("npm")
    assert npm is not None  # node_binary() checked it
    cmd = [npm, "ci", "--no-audit", "--no-fund"]
    try:
        proc = subprocess.run(
            cmd, cwd=folder, capture_output=True, text=True, timeout=NPM_CI_TIMEOUT
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"`npm ci` in {folder} took more than {NPM_CI_TIMEOUT:.0f} s\n{_tail(exc)}")
    if proc.returncode != 0:
        pytest.fail(
            f"`npm ci` in {folder} failed (exit {proc.returncode})\n"
            f"--- stdout\n{proc.stdout[-4000:]}\n--- stderr\n{proc.stderr[-4000:]}"
        )
    stamp.write_text(want)
    return node


def ensure_js_installed() -> str:
    """The js peer's packages (`npm ci` once); returns the node binary."""
    return npm_ci_once(JS_DIR, STAMP)


def _tail(exc: subprocess.TimeoutExpired) -> str:
    def text(b: bytes | str | None) -> str:
        if b is None:
            return ""
        return b.decode(errors="replace") if isinstance(b, bytes) else b

    return f"--- stdout\n{text(exc.stdout)[-4000:]}\n--- stderr\n{text(exc.stderr)[-4000:]}"


# ---------------------------------------------------------------- one-shot commands


@dataclass
class Result:
    """A finished command: its argv, exit code and output."""

    argv: list[str]
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    def describe(self) -> str:
        return (
            f"$ {' '.join(self.argv)}\n"
            f"exit {self.returncode} after {self.seconds:.2f} s\n"
            f"--- stdout\n{self.stdout[-4000:]}\n--- stderr\n{self.stderr[-4000:]}"
        )

    def json(self) -> dict[str, Any]:
        """The single JSON object on stdout; fails the test if the command failed."""
        if self.returncode != 0:
            pytest.fail(f"command failed\n{self.describe()}", pytrace=False)
        lines = [ln for ln in self.stdout.splitlines() if ln.strip()]
        if not lines:
            pytest.fail(f"command printed no JSON\n{self.describe()}", pytrace=False)
        try:
            value = json.loads(lines[-1])
        except json.JSONDecodeError as exc:
            pytest.fail(f"last stdout line is not JSON ({exc})\n{self.describe()}", pytrace=False)
        if not isinstance(value, dict):
            pytest.fail(f"JSON output is not an object\n{self.describe()}", pytrace=False)
        return value


def run(argv: Sequence[str], timeout: float, cwd: Path | None = None) -> Result:
    """Run a command to completion within `timeout` seconds (killed and failed after)."""
    argv = [str(a) for a in argv]
    start = time.monotonic()
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=cwd)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(
            f"$ {' '.join(argv)}\ndid not finish within {timeout:.0f} s\n{_tail(exc)}",
            pytrace=False,
        )
    result = Result(argv, proc.returncode, proc.stdout, proc.stderr, time.monotonic() - start)
    print(result.describe())  # shown by pytest when the test fails
    return result


def js_argv(op: str, *args: object) -> list[str]:
    return [node_binary(), str(JS_PEER), op, *(str(a) for a in args)]


def run_js_result(op: str, maddr: str, *args: object, timeout: float = 60.0) -> Result:
    """Run a js dialer op (`ping`, `echo`, `perf`, `identify`, `transfer`)."""
    # The peer's own deadline is shorter so it reports which step hung.
    inner = max(5, int(timeout) - 5)
    return run(js_argv(op, maddr, *args, "--timeout", inner), timeout=timeout, cwd=JS_DIR)


def run_js(op: str, maddr: str, *args: object, timeout: float = 60.0) -> dict[str, Any]:
    """Run a js dialer op and return its JSON result (fails the test on error)."""
    return run_js_result(op, maddr, *args, timeout=timeout).json()


def p2pkit_argv(*args: object) -> list[str]:
    return [sys.executable, "-m", "p2pkit", *(str(a) for a in args)]


def run_p2pkit_result(args: Sequence[object], timeout: float = 60.0) -> Result:
    """Run `python -m p2pkit <args>`; `--json` is added for the dialing commands."""
    argv = [str(a) for a in args]
    if argv and argv[0] in {"ping", "echo", "perf", "identify"} and "--json" not in argv:
        argv.append("--json")
    return run(p2pkit_argv(*argv), timeout=timeout)


def run_p2pkit(args: Sequence[object], timeout: float = 60.0) -> dict[str, Any]:
    """Run a p2pkit dialing command and return its JSON result (fails the test on error)."""
    return run_p2pkit_result(args, timeout=timeout).json()


# ---------------------------------------------------------------- listeners


class ListenerProcess:
    """A long-running listener: started on enter, LISTEN lines parsed, stopped on exit.

    Output is read by two threads (so pipes never fill up) into line lists that
    tests can inspect while the process runs (`lines`, `events`). On exit the
    process gets SIGTERM, then SIGKILL after TERM_GRACE seconds; if it had
    exited by itself before that, or exits non-zero, the test fails.
    """

    name = "listener"

    def __init__(self, argv: Sequence[str], cwd: Path | None = None) -> None:
        self.argv = [str(a) for a in argv]
        self.cwd = cwd
        self.proc: subprocess.Popen[str] | None = None
        self.stdout_lines: list[str] = []
        self.stderr_lines: list[str] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self.addrs: list[str] = []

    # -- lifecycle

    def __enter__(self) -> ListenerProcess:
        self.proc = subprocess.Popen(
            self.argv,
            cwd=self.cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        assert self.proc.stdout is not None and self.proc.stderr is not None
        for stream, sink, q in (
            (self.proc.stdout, self.stdout_lines, self._lines),
            (self.proc.stderr, self.stderr_lines, None),
        ):
            t = threading.Thread(target=self._pump, args=(stream, sink, q), daemon=True)
            t.start()
            self._threads.append(t)
        try:
            self._wait_listen()
        except BaseException:
            self._stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        crashed = self._stop()
        print(self.describe())  # shown by pytest when the test fails
        if crashed is not None and exc is None:
            pytest.fail(f"{self.name} {crashed}\n{self.describe()}", pytrace=False)

    def _pump(self, stream: Any, sink: list[str], q: queue.Queue[str | None] | None) -> None:
        for line in stream:
            line = line.rstrip("\n")
            with self._lock:
                sink.append(line)
            if q is not None:
                q.put(line)
        if q is not None:
            q.put(None)

    def _wait_listen(self) -> None:
        """Collect `LISTEN <maddr>` lines: wait for the first, then briefly for more."""
        deadline = time.monotonic() + LISTEN_TIMEOUT
        while True:
            wait = deadline - time.monotonic() if not self.addrs else 0.2
            if wait <= 0:
                self._fail_start(f"printed no LISTEN line within {LISTEN_TIMEOUT:.0f} s")
            try:
                line = self._lines.get(timeout=wait)
            except queue.Empty:
                if self.addrs:
                    return
                continue
            if line is None:
                if self.addrs:
                    return
                self._wait_exit(TERM_GRACE)
                self._fail_start("exited before printing a LISTEN line")
            elif line.startswith("LISTEN "):
                self.addrs.append(line.split(" ", 1)[1].strip())

    def _fail_start(self, why: str) -> NoReturn:
        self._stop()
        pytest.fail(f"{self.name} {why}\n{self.describe()}", pytrace=False)

    def _wait_exit(self, timeout: float) -> None:
        assert self.proc is not None
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass

    def _stop(self) -> str | None:
        """Stop the process; return why it counts as crashed, or None."""
        proc = self.proc
        if proc is None:
            return None
        crashed: str | None = None
        if proc.poll() is not None:
            crashed = f"exited by itself with code {proc.returncode} while the test ran"
        else:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=TERM_GRACE)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=TERM_GRACE)
                crashed = f"did not exit within {TERM_GRACE:.0f} s of SIGTERM (killed)"
            else:
                if proc.returncode != 0:
                    crashed = f"exited with code {proc.returncode} after SIGTERM"
        for t in self._threads:
            t.join(timeout=TERM_GRACE)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
        self.proc = None
        return crashed

    # -- inspection

    @property
    def maddr(self) -> str:
        """The first listen address, with /p2p/<id>."""
        return self.addrs[0]

    @property
    def peer_id(self) -> str:
        return self.maddr.rsplit("/p2p/", 1)[1]

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def lines(self, prefix: str = "") -> list[str]:
        with self._lock:
            return [ln for ln in self.stdout_lines if ln.startswith(prefix)]

    def events(self, kind: str) -> list[dict[str, Any]]:
        """Parsed `<KIND> {json}` stdout lines (js peer: CONNECTION, IDENTIFY)."""
        out = []
        for ln in self.lines(kind + " "):
            try:
                out.append(json.loads(ln.split(" ", 1)[1]))
            except json.JSONDecodeError:
                continue
        return out

    def wait_event(self, kind: str, timeout: float = 10.0, count: int = 1) -> list[dict[str, Any]]:
        """Wait until at least `count` `kind` events were printed; fail the test otherwise."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.events(kind)
            if len(found) >= count:
                return found
            time.sleep(0.05)
        pytest.fail(
            f"{self.name} printed fewer than {count} {kind} lines within {timeout:.0f} s\n"
            f"{self.describe()}"
        )

    def describe(self) -> str:
        with self._lock:
            out = "\n".join(self.stdout_lines[-200:])
            err = "\n".join(self.stderr_lines[-200:])
        return (
            f"$ {' '.join(self.argv)}\n--- {self.name} stdout\n{out}\n--- {self.name} stderr\n{err}"
        )

    def assert_alive(self) -> None:
        """Fail now (with its output) if the listener has died."""
        if not self.running:
            pytest.fail(f"{self.name} is not running\n{self.describe()}", pytrace=False)


def _csv(items: str | Sequence[str]) -> str:
    return items if isinstance(items, str) else ",".join(items)


class JsPeer(ListenerProcess):
    """`node peer.mjs listen ...`: a js-libp2p listener with the given preference lists
    (None: the peer's default; QUIC connections use neither)."""

    name = "js listener"

    def __init__(
        self,
        security: str | Sequence[str] | None = "noise",
        muxer: str | Sequence[str] | None = "yamux",
        *extra: str,
        listen: str = LOOPBACK,
    ) -> None:
        args = ["--listen", listen]
        if security is not None:
            args += ["--security", _csv(security)]
        if muxer is not None:
            args += ["--muxer", _csv(muxer)]
        super().__init__(js_argv("listen", *args, *extra), cwd=JS_DIR)

    def __enter__(self) -> JsPeer:
        super().__enter__()
        return self


class P2pkitListener(ListenerProcess):
    """`python -m p2pkit listen ...` with the given preference lists."""

    name = "p2pkit listener"

    def __init__(
        self,
        security: str | Sequence[str] | None = "noise",
        muxer: str | Sequence[str] | None = "yamux",
        *extra: str,
        listen: str = LOOPBACK,
    ) -> None:
        args = ["listen", "--listen", listen]
        if security is not None:
            args += ["--security", _csv(security)]
        if muxer is not None:
            args += ["--muxer", _csv(muxer)]
        super().__init__(p2pkit_argv(*args, *extra))

    def __enter__(self) -> P2pkitListener:
        super().__enter__()
        return self


def strip_p2p(maddr: str) -> str:
    """`/ip4/.../tcp/N/p2p/<id>` -> `/ip4/.../tcp/N` (`/udp/N/quic-v1` alike)."""
    return maddr.split("/p2p/", 1)[0]
