"""Set up py-libp2p (from PyPI) in a venv of its own for the comparison.

Why a separate venv (``benchmarks/.venv-pylibp2p``, not committed): py-libp2p pulls in
trio and a large dependency tree that p2pkit must never depend on, and both packages
are called ``libp2p``-something; keeping it apart guarantees that each side runs only
its own code.  The venv is created on first use and reused afterwards.
"""

from __future__ import annotations

import subprocess
import sys

from _peers import PY_PEER, PY_VENV, STACKS, Impl, py_impl

#: The version we benchmark against (pinned, so re-runs compare like with like).
PY_LIBP2P_VERSION = "0.8.1"
#: Stacks the py-libp2p peer offers (it has Noise, TLS, plaintext, Yamux and Mplex).
PY_STACKS = frozenset(s.name for s in STACKS)


def _venv_python() -> str:
    return str(PY_VENV / "bin" / "python")


def _installed_version() -> str | None:
    if not (PY_VENV / "bin" / "python").exists():
        return None
    try:
        out = subprocess.run(
            [
                _venv_python(),
                "-c",
                "from importlib.metadata import version; print(version('libp2p'))",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def ensure_pylibp2p() -> tuple[Impl | None, str | None, str | None]:
    """Return (impl, version, note); impl is None (with the reason in note) on failure."""
    version = _installed_version()
    if version != PY_LIBP2P_VERSION:
        print(
            f"setting up py-libp2p {PY_LIBP2P_VERSION} in {PY_VENV.name} "
            "(first run only, a few minutes)...",
            flush=True,
        )
        try:
            if not (PY_VENV / "bin" / "python").exists():
                subprocess.run(
                    [sys.executable, "-m", "venv", str(PY_VENV)],
                    check=True,
                    timeout=300,
                    capture_output=True,
                )
            subprocess.run(
                [_venv_python(), "-m", "pip", "install", "-q", f"libp2p=={PY_LIBP2P_VERSION}"],
                check=True,
                timeout=1200,
                capture_output=True,
            )
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
            detail = ""
            if isinstance(exc, subprocess.CalledProcessError) and exc.stderr:
                detail = ": " + exc.stderr.decode(errors="replace").strip().splitlines()[-1]
            return None, None, f"py-libp2p skipped: could not install it ({exc}{detail})"
        version = _installed_version()
        if version is None:
            return None, None, "py-libp2p skipped: installed but not importable"
    if not PY_PEER.exists():
        return None, version, f"py-libp2p skipped: {PY_PEER.name} is missing"
    return py_impl(PY_STACKS), version, None
