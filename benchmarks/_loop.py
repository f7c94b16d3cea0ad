"""The event loop every benchmark runs p2pkit on: ``--event-loop asyncio|uvloop``.

One flag, shared by every script: :func:`add_event_loop_arg` adds it, :func:`select`
records the choice in the environment (``P2PKIT_BENCH_EVENT_LOOP``), so the processes a
benchmark starts (spawned children, the script re-run as a server, dialer processes)
inherit it; :func:`run` replaces ``asyncio.run`` in the scripts, and :func:`cli_args`
passes the choice to the ``p2pkit`` commands a benchmark runs.  No p2pkit import here:
``compare.py`` imports its helpers in a process without p2pkit.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")
ENV = "P2PKIT_BENCH_EVENT_LOOP"
CHOICES = ("asyncio", "uvloop")


def current() -> str:
    """The loop chosen for this benchmark (inherited from the parent process, if any)."""
    name = os.environ.get(ENV, "asyncio")
    if name not in CHOICES:
        raise SystemExit(f"{ENV}={name!r}: expected one of {', '.join(CHOICES)}")
    return name


def add_event_loop_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--event-loop",
        choices=CHOICES,
        default=current(),
        help="run p2pkit on asyncio's loop or on uvloop (default: asyncio)",
    )


def select(name: str) -> str:
    """Use loop ``name`` here and in every process started from now on."""
    os.environ[ENV] = name
    current()
    return name


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)`` on the chosen loop."""
    factory = None
    if current() == "uvloop":
        try:
            import uvloop  # optional dependency: only when asked for
        except ImportError:
            main.close()
            hint = '--event-loop uvloop needs uvloop: pip install "p2pkit[uvloop]"'
            raise SystemExit(hint) from None
        factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)


def cli_args() -> list[str]:
    """The flag for a ``p2pkit`` command line (``p2pkit listen``, ``perf``, ``ping``...)."""
    return ["--event-loop", current()]
