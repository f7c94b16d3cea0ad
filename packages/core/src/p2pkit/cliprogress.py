"""What the CLI shows a person: a progress line on a terminal, units, the stack.

The progress line goes to stderr only, only when stderr is a terminal, and never with
``--json``: stdout stays one result (a line or one JSON object) that scripts parse, and
a log file or a pipe never fills with carriage returns.  The line is redrawn by a ticker
a few times a second, however fast the data moves.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from multiaddr import Multiaddr

    from p2pkit.connection import Connection
    from p2pkit.protocols.perf import PerfResult

#: Seconds between two redraws of the progress line.
INTERVAL = 0.25
_CLEAR = "\r\x1b[K"
#: Address parts that say where, not how: left out of the transport's name.
_LOCATION = frozenset({"ip4", "ip6", "dns", "dns4", "dns6", "dnsaddr", "p2p", "ipfs", "ip6zone"})


def wants_progress(json_output: bool, stream: TextIO | None = None) -> bool:
    """A progress line only for a person: stderr (or ``stream``) is a terminal, no JSON."""
    stream = stream if stream is not None else sys.stderr
    if json_output:
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or closed
        return False


@contextlib.asynccontextmanager
async def progress_line(
    render: Callable[[], str], enabled: bool, stream: TextIO | None = None
) -> AsyncIterator[None]:
    """Redraw ``render()`` on one terminal line every :data:`INTERVAL` seconds while the
    block runs (nothing at all if not ``enabled``); the line is cleared at the end."""
    if not enabled:
        yield
        return
    out = stream if stream is not None else sys.stderr

    async def tick() -> None:
        while True:
            out.write(f"{_CLEAR}{render()}")
            out.flush()
            await asyncio.sleep(INTERVAL)

    task = asyncio.get_running_loop().create_task(tick(), name="p2pkit-progress")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        out.write(f"{_CLEAR}{render()}{_CLEAR}")
        out.flush()


# -- units ------------------------------------------------------------------------------


def megabytes(n: float) -> str:
    """Bytes as MB (10^6 bytes, as every figure p2pkit prints)."""
    return f"{n / 1e6:.1f} MB"


def rate(n: float, seconds: float) -> str:
    """Bytes over seconds as MB/s."""
    return f"{n / seconds / 1e6:.1f} MB/s" if seconds > 0 else "- MB/s"


def millis(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


# -- the negotiated stack ----------------------------------------------------------------


def transport_name(addr: Multiaddr | None) -> str:
    """The transport part of an address: ``/ip4/1.2.3.4/tcp/1`` -> ``tcp``,
    ``/ip4/.../udp/1/quic-v1`` -> ``udp/quic-v1``, ``/unix/path`` -> ``unix``."""
    if addr is None:
        return "?"
    names = [p.name for p in addr.protocols() if p.name not in _LOCATION]
    return "/".join(names) or "?"


def stack(conn: Connection) -> str:
    """``transport + security + muxer`` of a connection (protocol ids as negotiated)."""
    early = " (muxer agreed in the handshake)" if conn.early_muxer else ""
    return (
        f"{transport_name(conn.remote_addr)} + {conn.security_protocol or '-'} + "
        f"{conn.muxer_protocol or '-'}{early}"
    )


# -- perf ---------------------------------------------------------------------------------


class PerfProgress:
    """The perf client's progress: the phase running, its bytes so far, its start."""

    def __init__(self) -> None:
        self.phase = "upload"
        self.nbytes = 0
        self.start = time.perf_counter()

    def __call__(self, phase: str, nbytes: int) -> None:
        if phase != self.phase:
            self.phase, self.start = phase, time.perf_counter()
        self.nbytes = nbytes

    def render(self) -> str:
        seconds = time.perf_counter() - self.start
        return f"perf {self.phase}: {megabytes(self.nbytes)}, {rate(self.nbytes, seconds)}"


def perf_text(result: PerfResult, connect_ms: float, via: str) -> str:
    """The human perf result: the stack, then each direction that ran, with units (a
    timed download-only run has no upload line)."""
    lines = [f"connected in {connect_ms:.2f} ms over {via}"]
    for name, nbytes, seconds in (
        ("upload  ", result.upload_bytes, result.upload_seconds),
        ("download", result.download_bytes, result.download_seconds),
    ):
        if nbytes or not (result.upload_bytes or result.download_bytes):
            size, took = megabytes(nbytes), millis(seconds)
            lines.append(f"{name} {size} in {took}: {rate(nbytes, seconds)}")
    return "\n".join(lines)


__all__ = [
    "INTERVAL",
    "PerfProgress",
    "megabytes",
    "millis",
    "perf_text",
    "progress_line",
    "rate",
    "stack",
    "transport_name",
    "wants_progress",
]
