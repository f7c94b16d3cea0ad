"""The event loop a p2pkit program runs on: ``event_loop = "asyncio" | "uvloop"``.

asyncio's own loop is the default and always available.  uvloop (libuv underneath) is an
optional dependency, ``pip install "p2pkit[uvloop]"``; asking for it without it installed
is a :class:`~p2pkit.errors.ConfigError` that says what to install, raised when the
configuration is validated (nothing is imported then) and again by :func:`run`.

The host itself runs on whatever loop is running: the setting matters to whoever starts
the loop, :func:`run` (used by ``p2pkit`` commands, ``HostBuilder.run`` and the
benchmarks).  An application that starts its own loop keeps doing so.
"""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from p2pkit.errors import ConfigError

T = TypeVar("T")

EVENT_LOOPS = ("asyncio", "uvloop")
DEFAULT_EVENT_LOOP = "asyncio"
INSTALL_HINT = 'pip install "p2pkit[uvloop]"'


def check_event_loop(name: object) -> str:
    """``name`` if it is a known event loop that can be used here; else a ConfigError
    (unknown name, or uvloop asked for and not installed).  Imports nothing."""
    if name not in EVENT_LOOPS:
        raise ConfigError(f"event_loop must be one of {', '.join(EVENT_LOOPS)}, got {name!r}")
    if name == "uvloop" and not _installed("uvloop"):
        raise ConfigError(f'event_loop = "uvloop" needs the uvloop package: {INSTALL_HINT}')
    return str(name)


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """What :class:`asyncio.Runner` needs to create the loop ``name`` (None: asyncio's)."""
    check_event_loop(name)
    if name == "asyncio":
        return None
    try:
        import uvloop  # optional dependency: only when asked for
    except ImportError as exc:  # installed but broken
        raise ConfigError(f"uvloop cannot be imported ({exc}): {INSTALL_HINT}") from exc
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def run(main: Coroutine[Any, Any, T], event_loop: str = DEFAULT_EVENT_LOOP) -> T:
    """``asyncio.run(main)`` on the event loop ``event_loop``."""
    try:
        factory = loop_factory(event_loop)
    except BaseException:
        main.close()  # never started: no "coroutine was never awaited" warning
        raise
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)


def running_loop_name() -> str:
    """The name of the running loop's implementation: ``"uvloop"`` or ``"asyncio"``."""
    module = type(asyncio.get_running_loop()).__module__
    return "uvloop" if module.startswith("uvloop") else "asyncio"


__all__ = [
    "DEFAULT_EVENT_LOOP",
    "EVENT_LOOPS",
    "INSTALL_HINT",
    "check_event_loop",
    "loop_factory",
    "run",
    "running_loop_name",
]
