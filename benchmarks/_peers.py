"""How to start each implementation's listener and run its perf / ping clients.

Why one table of command lines: ``compare.py`` treats every implementation the same
way (a ``listen`` process printing ``LISTEN <maddr>`` plus one short-lived client process
per measurement), so adding an implementation is one more :class:`Impl` entry.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
JS_DIR = ROOT / "tests" / "interop" / "js"
PY_VENV = HERE / ".venv-pylibp2p"
PY_PEER = HERE / "_pylibp2p_peer.py"


@dataclasses.dataclass(frozen=True)
class Stack:
    """A transport stack: TCP or WebSocket (``ws``), one security protocol, one muxer."""

    security: str
    muxer: str
    transport: str = "tcp"

    @property
    def name(self) -> str:
        return f"{self.transport}+{self.security}+{self.muxer}"

    @property
    def listen_addr(self) -> str:
        return "/ip4/127.0.0.1/tcp/0" + ("/ws" if self.transport == "ws" else "")


STACKS = [
    Stack("noise", "yamux"),
    Stack("plaintext", "yamux"),
    Stack("noise", "mplex"),
    Stack("tls", "yamux"),
]
"""The stacks of a default run."""

WS_STACKS = [Stack("noise", "yamux", "ws")]
"""Run when named (``--stack ws+noise+yamux``; ``ws_throughput.py`` does)."""

ALL_STACKS = STACKS + WS_STACKS


@dataclasses.dataclass(frozen=True)
class Impl:
    """One implementation: how to run it and which stacks it can do."""

    name: str
    base: tuple[str, ...]  # argv prefix up to the sub-command
    cwd: Path | None
    stacks: frozenset[str]  # Stack.name values it supports
    #: Set for the hashicorp/yamux reference (benchmarks/go): its stream window.
    #: It has Go-style flags and no ping.
    go_window: int | None = None

    @property
    def has_ping(self) -> bool:
        return self.go_window is None

    def listen_argv(self, stack: Stack) -> list[str]:
        if self.go_window is not None:
            return [*self.base, "listen", "-window", str(self.go_window)]
        return [
            *self.base,
            "listen",
            "--listen",
            stack.listen_addr,
            "--security",
            stack.security,
            "--muxer",
            stack.muxer,
        ]

    def perf_argv(
        self, stack: Stack, addr: str, upload: int, download: int, timeout: float
    ) -> list[str]:
        if self.go_window is not None:
            return [
                *self.base,
                "perf",
                addr,
                "-upload",
                str(upload),
                "-download",
                str(download),
                "-window",
                str(self.go_window),
            ]
        argv = [
            *self.base,
            "perf",
            addr,
            "--upload",
            str(upload),
            "--download",
            str(download),
            "--security",
            stack.security,
            "--muxer",
            stack.muxer,
            "--timeout",
            str(int(timeout)),
        ]
        return argv + (["--json"] if self.name == "p2pkit" else [])

    def ping_argv(self, stack: Stack, addr: str, timeout: float) -> list[str]:
        argv = [
            *self.base,
            "ping",
            addr,
            "--count",
            "1",
            "--security",
            stack.security,
            "--muxer",
            stack.muxer,
            "--timeout",
            str(int(timeout)),
        ]
        return argv + (["--json"] if self.name == "p2pkit" else [])


def p2pkit_impl() -> Impl:
    # The python running compare.py must have p2pkit installed (the repository venv).
    stacks = frozenset(s.name for s in ALL_STACKS)
    return Impl("p2pkit", (sys.executable, "-m", "p2pkit"), None, stacks)


def js_impl() -> Impl:
    stacks = frozenset(s.name for s in ALL_STACKS)
    return Impl("js", ("node", str(JS_DIR / "peer.mjs")), JS_DIR, stacks)


def py_impl(stacks: frozenset[str]) -> Impl:
    return Impl("py-libp2p", (str(PY_VENV / "bin" / "python"), str(PY_PEER)), HERE, stacks)


def child_env() -> dict[str, str]:
    """Environment for peers: no inherited PYTHONPATH/virtualenv confusion between venvs."""
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    env.pop("VIRTUAL_ENV", None)
    env["PYTHONUNBUFFERED"] = "1"
    return env
