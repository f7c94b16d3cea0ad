"""The browser test's machinery: npm packages, the bundle, the web server, the browser.

Everything js lives in this folder with its own package.json and package-lock.json
(npm ci, like tests/interop/js); `build.mjs` bundles the page's client with esbuild,
a Python http.server thread serves it on 127.0.0.1, and `driver.mjs` opens it in
Debian's Chromium through playwright-core and prints what the page reported.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from ..interop.harness import Result, in_ci, npm_ci_once, run

HERE = Path(__file__).resolve().parent
STAMP = HERE / "node_modules" / ".p2pkit-browser-stamp"
BUILD_TIMEOUT = 120.0
#: Debian's package; P2PKIT_CHROMIUM names another binary.
DEFAULT_CHROMIUM = "/usr/bin/chromium"


def ensure_installed() -> str:
    """`npm ci` here once, unless node_modules matches the lock file; returns node."""
    return npm_ci_once(HERE, STAMP)


def chromium_binary() -> str:
    """Chromium's path: skipped without it locally, a failure with CI=true."""
    path = os.environ.get("P2PKIT_CHROMIUM", DEFAULT_CHROMIUM)
    if os.access(path, os.X_OK):
        return path
    msg = f"the browser test needs Chromium: {path} not found (apt-get install chromium)"
    if in_ci():
        pytest.fail(msg + " (CI=true: .ci/run installs it)", pytrace=False)
    pytest.skip(msg)


def build_bundle(node: str, out: Path) -> Path:
    """Bundle app.js into `out` (bundle.js + index.html); returns `out`."""
    result = run([node, str(HERE / "build.mjs"), str(out)], timeout=BUILD_TIMEOUT, cwd=HERE)
    if result.returncode != 0:
        pytest.fail(f"bundling the page failed\n{result.describe()}", pytrace=False)
    return out


@contextmanager
def serve(directory: Path) -> Iterator[tuple[str, list[str]]]:
    """Serve `directory` on 127.0.0.1 from a thread; yields (base URL, request log).

    Requests are logged to the list (the test prints it, pytest shows it on failure),
    not to stderr.
    """
    log: list[str] = []

    class Handler(SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            log.append(format % args)

    server = ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Handler, directory=str(directory))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", log
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def run_group(argv: Sequence[str], timeout: float) -> Result:
    """Run `argv` in a process group of its own; on timeout kill the whole group.

    Why not harness.run: its timeout kills the driver (node) alone, and a SIGKILLed
    driver cannot stop the Chromium processes it launched; killing the group can.
    """
    start = time.monotonic()
    proc = subprocess.Popen(
        list(argv),
        cwd=HERE,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        pytest.fail(
            f"$ {' '.join(argv)}\ndid not finish within {timeout:.0f} s (process group killed)\n"
            f"--- stdout\n{stdout[-4000:]}\n--- stderr\n{stderr[-4000:]}",
            pytrace=False,
        )
    finally:
        # Whatever the driver left behind (it should leave nothing) goes with it.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    result = Result(list(argv), proc.returncode, stdout, stderr, time.monotonic() - start)
    print(result.describe())  # shown by pytest when the test fails
    return result


def page_url(base: str, maddr: str, nbytes: int, pings: int) -> str:
    return base + "index.html?" + urlencode({"maddr": maddr, "bytes": nbytes, "pings": pings})


def open_pages(
    node: str,
    chromium: str,
    profile: Path,
    urls: Sequence[str],
    timeout: float,
    trust_spki: str | None = None,
) -> list[dict[str, Any]]:
    """Open every URL in one headless Chromium; one `{"url", "result"[, "error"]}` each.

    `trust_spki`: base64 SHA-256 of a certificate's public key that Chromium accepts
    for TLS whoever signed it (the test's `/tls/ws` certificate).

    `result` is the page's window.result (None if it never set one: then `error`
    says why). The driver's whole output is printed, so a failing test shows the
    page's console.
    """
    argv = [
        node,
        str(HERE / "driver.mjs"),
        "--chromium",
        chromium,
        "--profile",
        str(profile),
        "--timeout",
        str(int(timeout)),
        *(["--trust-spki", trust_spki] if trust_spki else []),
        *urls,
    ]
    result = run_group(argv, timeout=timeout * len(urls) + 60)
    lines = [ln for ln in result.stdout.splitlines() if ln.startswith("RESULT ")]
    if len(lines) != len(urls):
        pytest.fail(
            f"the driver reported {len(lines)} of {len(urls)} pages\n{result.describe()}",
            pytrace=False,
        )
    return [json.loads(ln.split(" ", 1)[1]) for ln in lines]
