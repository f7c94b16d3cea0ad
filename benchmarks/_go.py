"""Build the hashicorp/yamux reference (``benchmarks/go/yamuxperf``) for ``compare.py --go``.

Why Debian's packages and GOPATH mode: the machines reach no Go module proxy for
arbitrary repositories, but Debian ships both the toolchain (``golang-go``) and the
library source (``golang-github-hashicorp-yamux-dev`` under ``/usr/share/gocode``), so
``GO111MODULE=off GOPATH=/usr/share/gocode go build`` works offline.  The binary goes to
a temporary directory; nothing is written into the work tree.  The build step
(:func:`build_go_program`) is shared with ``tests/yamux/test_hashicorp_interop.py`` and
``tests/interop/test_go.py`` (quic-go, flynn/noise: ``golang-github-lucas-clemente-quic-go-dev``,
``golang-github-flynn-noise-dev``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from _peers import HERE, STACKS, Impl

GO_SRC = HERE / "go" / "yamuxperf"
GOPATH = Path("/usr/share/gocode")
YAMUX_SRC = GOPATH / "src" / "github.com" / "hashicorp" / "yamux"
KiB = 1024
#: (implementation name, MaxStreamWindowSize): hashicorp's default and a large window.
GO_WINDOWS = [("go-yamux-256KiB", 256 * KiB), ("go-yamux-16MiB", 16 * 1024 * KiB)]
SETUP_HINT = (
    "apt-get install golang-go golang-github-hashicorp-yamux-dev (Debian/Ubuntu) provides both"
)


def build_go_program(go: str, src: Path, out_dir: Path, timeout: float) -> Path:
    """Build the Go program in ``src`` offline into ``out_dir`` (GOPATH mode, see above);
    the binary's path.  Shared with the tests' own Go peers (``tests/interop/go``).

    Raises what ``subprocess.run`` raises (``CalledProcessError`` with the captured stderr,
    ``TimeoutExpired``, ``OSError``): a test fails with it, ``build_go`` stops the benchmark.
    """
    env = dict(os.environ)
    env.update(GO111MODULE="off", GOPATH=str(GOPATH), GOFLAGS="", GOCACHE=str(out_dir / "cache"))
    binary = out_dir / src.name
    subprocess.run(
        [go, "build", "-o", str(binary), "."],
        cwd=src,
        env=env,
        check=True,
        timeout=timeout,
        capture_output=True,
    )
    return binary


def build_yamuxperf(go: str, out_dir: Path, timeout: float) -> Path:
    """Build ``GO_SRC`` (:func:`build_go_program`); the binary's path."""
    return build_go_program(go, GO_SRC, out_dir, timeout)


def build_go() -> tuple[list[Impl], str | None]:
    """Return the Go reference implementations, or ([], reason) when they cannot be built."""
    go = shutil.which("go")
    if go is None:
        return [], f"--go: no `go` on PATH ({SETUP_HINT})"
    if not YAMUX_SRC.is_dir():
        return [], f"--go: hashicorp/yamux source not found in the GOPATH ({SETUP_HINT})"
    out_dir = Path(tempfile.mkdtemp(prefix="p2pkit-bench-go-"))
    # A missing toolchain is the machine's (a note, the comparison is left out); our own
    # program failing to build is a bug here, so it stops the run instead of hiding.
    try:
        binary = build_yamuxperf(go, out_dir, timeout=600)
    except subprocess.CalledProcessError as exc:
        err = exc.stderr.decode(errors="replace").strip()[-2000:]
        raise SystemExit(f"--go: {GO_SRC} does not build: {err}") from exc
    except (subprocess.TimeoutExpired, OSError) as exc:
        raise SystemExit(f"--go: go build of {GO_SRC} failed: {exc}") from exc
    plaintext_yamux = frozenset(s.name for s in STACKS if s.name == "tcp+plaintext+yamux")
    impls = [
        Impl(name, (str(binary),), None, plaintext_yamux, go_window=window)
        for name, window in GO_WINDOWS
    ]
    return impls, None
