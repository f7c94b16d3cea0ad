"""``/perf/1.0.0`` (libp2p/specs perf/perf.md).

Client: open a stream, write the number of bytes it wants back as a big-endian u64,
upload its bytes, close its write side, then read until EOF.  Server: read the u64,
drain the upload to EOF, *then* send the requested bytes and close.
"""

from __future__ import annotations

import asyncio
import dataclasses
import struct
import time
from collections.abc import Awaitable, Callable

from p2pkit.abc import MuxedStream
from p2pkit.errors import ProtocolError

PROTOCOL_ID = "/perf/1.0.0"
BLOCK = 1 << 20  # one reusable block of zeros, written repeatedly
_ZEROS = bytes(BLOCK)
#: Server side: a read or a write that waits this long ends the stream (the host resets
#: it), so a peer cannot park perf streams forever.
IDLE_TIMEOUT = 60.0


#: ``progress(phase, nbytes)``: the bytes moved so far in phase "upload" or "download",
#: called at most once per block (for a progress display; never per frame).
Progress = Callable[[str, int], None]


async def _send(
    stream: MuxedStream, n: int, idle: float | None = None, progress: Progress | None = None
) -> None:
    view = memoryview(_ZEROS)
    sent = 0
    while n > 0:
        k = min(n, BLOCK)
        async with asyncio.timeout(idle):
            await stream.write(view[:k])
        n -= k
        if progress is not None:
            sent += k
            progress("upload", sent)


async def _drain(
    stream: MuxedStream, idle: float | None = None, progress: Progress | None = None
) -> int:
    total = 0
    while True:
        async with asyncio.timeout(idle):
            data = await stream.read(BLOCK)
        if not data:
            return total
        total += len(data)
        if progress is not None:
            progress("download", total)


@dataclasses.dataclass(frozen=True)
class PerfServed:
    """What the server side of one perf stream counted."""

    upload_bytes: int
    """Bytes the client uploaded, as received here (up to its EOF)."""
    download_bytes: int
    """Bytes the client asked for (sent next)."""


async def handle_perf(
    stream: MuxedStream, report: Callable[[PerfServed], None] | None = None
) -> None:
    """Serve one perf stream; ``report`` (if any) gets the server's own byte counts
    once the upload is drained, before the download starts, so a client's result can
    be checked against what really arrived."""
    try:
        async with asyncio.timeout(IDLE_TIMEOUT):
            header = await stream.readexactly(8)
    except asyncio.IncompleteReadError as exc:
        raise ProtocolError("perf: stream ended before the 8-byte size") from exc
    (wanted,) = struct.unpack(">Q", header)
    received = await _drain(stream, IDLE_TIMEOUT)
    if report is not None:
        report(PerfServed(received, wanted))
    await _send(stream, wanted, IDLE_TIMEOUT)
    await stream.close_write()


def reporting_handler(
    report: Callable[[PerfServed], None],
) -> Callable[[MuxedStream], Awaitable[None]]:
    """A perf stream handler that gives each stream's server-side counts to ``report``."""

    async def handler(stream: MuxedStream) -> None:
        await handle_perf(stream, report)

    return handler


@dataclasses.dataclass
class PerfResult:
    upload_bytes: int
    upload_seconds: float
    download_bytes: int
    download_seconds: float

    def as_dict(self) -> dict[str, float]:
        def mbps(n: int, s: float) -> float:
            return round(n / s / 1e6, 3) if s > 0 else 0.0

        return {
            "upload_bytes": self.upload_bytes,
            "upload_seconds": round(self.upload_seconds, 6),
            "upload_MBps": mbps(self.upload_bytes, self.upload_seconds),
            "download_bytes": self.download_bytes,
            "download_seconds": round(self.download_seconds, 6),
            "download_MBps": mbps(self.download_bytes, self.download_seconds),
        }


async def perf(
    stream: MuxedStream, upload: int, download: int, *, progress: Progress | None = None
) -> PerfResult:
    """Run the perf client on ``stream``.

    Upload time runs from the first byte written to the close of our side; download
    time from then to the last byte read.
    """
    start = time.perf_counter()
    await stream.write(struct.pack(">Q", download))
    await _send(stream, upload, progress=progress)
    await stream.close_write()
    mid = time.perf_counter()
    got = await _drain(stream, progress=progress)
    end = time.perf_counter()
    await stream.close()
    if got != download:
        raise ProtocolError(f"perf: asked for {download} bytes, received {got}")
    return PerfResult(upload, mid - start, got, end - mid)


#: What a timed download asks for: more than any run moves (the protocol has no "stop").
UNBOUNDED = 2**64 - 1


async def perf_timed(
    stream: MuxedStream,
    upload_seconds: float,
    download_seconds: float,
    *,
    progress: Progress | None = None,
) -> PerfResult:
    """Run the perf client for a time instead of a byte count: upload whole blocks for
    ``upload_seconds``, then download for ``download_seconds`` (0: skip that phase).

    The protocol fixes the download size up front, so a timed download asks for
    :data:`UNBOUNDED` bytes and resets the stream when its time is up (the server sees
    a reset stream, as when any client goes away).
    """
    start = time.perf_counter()
    await stream.write(struct.pack(">Q", UNBOUNDED if download_seconds > 0 else 0))
    view = memoryview(_ZEROS)
    sent = 0
    deadline = start + upload_seconds
    while upload_seconds > 0 and time.perf_counter() < deadline:
        await stream.write(view)  # whole blocks: the count is exactly what was sent
        sent += BLOCK
        if progress is not None:
            progress("upload", sent)
    await stream.close_write()
    mid = time.perf_counter()
    got = 0
    if download_seconds > 0:
        # The loop's timers may fire a little early (uvloop rounds to milliseconds), so
        # the deadline is checked against the clock the result is measured with.
        deadline = mid + download_seconds
        eof = False
        while not eof and (left := deadline - time.perf_counter()) > 0:
            try:
                async with asyncio.timeout(left):
                    while data := await stream.read(BLOCK):
                        got += len(data)
                        if progress is not None:
                            progress("download", got)
                    eof = True
            except TimeoutError:
                pass
        end = time.perf_counter()
        stream.reset()
    else:
        if await _drain(stream):
            raise ProtocolError("perf: asked for 0 bytes, received some")
        end = time.perf_counter()
        await stream.close()
    return PerfResult(sent, mid - start, got, end - mid)
