"""yamux against Go's hashicorp/yamux (the reference implementation), both directions.

Uses the small Go program of the benchmarks (``benchmarks/go/yamuxperf``: plain yamux over
TCP, one stream; the client sends two big-endian u64s, upload size and download size,
uploads, then reads to EOF; the server reads the upload, answers with the download, or one
ack byte, and closes).  Built offline from Debian's ``golang-go`` and
``golang-github-hashicorp-yamux-dev``; skipped when they are not installed, except with
CI=true (then a failure: the reference test must run in CI).  Our own Go program failing to
build is always a failure.

Both hashicorp's default 256 KiB window and a 16 MiB one (Go then sends Data frames as large
as the window we grant and window updates with large deltas).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import cast

import pytest
from multiaddr import Multiaddr

from p2pkit.abc import RawConnection, SecureConnection
from p2pkit_tcp import TcpOptions, TcpTransport
from p2pkit_yamux import YamuxConnection, YamuxMuxer, YamuxOptions

# One Go build step for the benchmarks and this test: benchmarks/_go.py.  The benchmark
# helpers are sibling modules of that directory, not a package (a script run there gets it
# on sys.path), so the directory is put on sys.path; appended, so that it shadows nothing.
sys.path.append(str(Path(__file__).resolve().parents[2] / "benchmarks"))

from _go import GO_SRC, YAMUX_SRC, build_yamuxperf

MiB = 1 << 20
OPTIONS = YamuxOptions(keepalive_interval=0, close_timeout=2.0)


@pytest.fixture(scope="module")
def yamuxperf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    go = shutil.which("go")
    assert GO_SRC.is_dir(), f"{GO_SRC} is missing"  # ours: never a reason to skip
    if go is None or not YAMUX_SRC.is_dir():
        msg = "needs go and hashicorp/yamux (golang-go golang-github-hashicorp-yamux-dev)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{msg} (CI=true: the reference test must run)", pytrace=False)
        pytest.skip(msg)
    try:
        return build_yamuxperf(go, tmp_path_factory.mktemp("go"), timeout=300)
    except subprocess.CalledProcessError as exc:
        err = exc.stderr.decode(errors="replace") if exc.stderr else ""
        pytest.fail(f"our Go helper {GO_SRC} does not build: {exc}\n{err}", pytrace=False)
    except (subprocess.TimeoutExpired, OSError) as exc:
        pytest.fail(f"go build of {GO_SRC} failed: {exc}", pytrace=False)


async def _go_listener(binary: Path, window: int) -> tuple[asyncio.subprocess.Process, str]:
    proc = await asyncio.create_subprocess_exec(
        str(binary),
        "listen",
        "-window",
        str(window),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode().strip()
    assert line.startswith("LISTEN "), line
    return proc, line.split()[1]


async def _stop(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.kill()
    await proc.wait()


@pytest.fixture
async def transport() -> AsyncIterator[TcpTransport]:
    t = TcpTransport(TcpOptions())
    yield t
    await t.close()


@pytest.mark.parametrize("window", [256 * 1024, 16 * MiB])
async def test_p2pkit_client_go_server(
    yamuxperf: Path, transport: TcpTransport, window: int
) -> None:
    proc, addr = await _go_listener(yamuxperf, window)
    try:
        raw = await transport.dial(Multiaddr(addr))
        session = YamuxMuxer(OPTIONS).new_session(
            cast(SecureConnection, raw),  # plain yamux over TCP, as the Go program speaks
            is_initiator=True,
        )
        try:
            async with asyncio.timeout(40):
                upload, download = 24 * MiB + 123, 40 * MiB + 7
                stream = await session.open_stream()
                await stream.write(struct.pack(">QQ", upload, download))
                block = os.urandom(MiB)
                for _ in range(upload // MiB):
                    await stream.write(block)
                await stream.write(block[: upload % MiB])
                got = 0
                h = hashlib.sha256()
                while chunk := await stream.read():
                    got += len(chunk)
                    h.update(chunk)
                assert got == download
                assert h.digest() == hashlib.sha256(bytes(download)).digest()  # Go sends zeros
                await stream.close()
                if window > 256 * 1024:
                    assert session.session.rtt is not None  # Go answered our ping
        finally:
            await session.close()
    finally:
        await _stop(proc)


async def _serve_like_go(stream_conn: YamuxConnection) -> None:
    """The Go program's server side, on p2pkit: read the upload, answer, close."""
    stream = await stream_conn.accept_stream()
    hdr = await stream.readexactly(16)
    upload, download = struct.unpack(">QQ", hdr)
    left = upload
    while left:
        chunk = await stream.read(min(left, MiB))
        assert chunk, "EOF before the whole upload"
        left -= len(chunk)
    down = download or 1
    block = bytes(MiB)
    while down:
        n = min(down, MiB)
        await stream.write(block[:n] if n < MiB else block)
        down -= n
    await stream.close()


@pytest.mark.parametrize("window", [256 * 1024, 16 * MiB])
async def test_go_client_p2pkit_server(
    yamuxperf: Path, transport: TcpTransport, window: int
) -> None:
    sessions: list[YamuxConnection] = []
    servers: list[asyncio.Task[None]] = []

    def on_conn(raw: RawConnection) -> None:
        session = YamuxMuxer(OPTIONS).new_session(
            cast(SecureConnection, raw),  # plain yamux over TCP, as the Go program speaks
            is_initiator=False,
        )
        sessions.append(session)
        servers.append(asyncio.ensure_future(_serve_like_go(session)))

    listener = await transport.listen(Multiaddr("/ip4/127.0.0.1/tcp/0"), on_conn)
    try:
        upload, download = 24 * MiB + 5, 40 * MiB + 11
        proc = await asyncio.create_subprocess_exec(
            str(yamuxperf),
            "perf",
            str(listener.addrs[0]),
            "-upload",
            str(upload),
            "-download",
            str(download),
            "-window",
            str(window),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(proc.communicate(), 60)
        finally:
            await _stop(proc)
        assert proc.returncode == 0, err.decode()
        result = json.loads(out)
        assert result["upload_bytes"] == upload and result["download_bytes"] == download
        assert len(servers) == 1
        await asyncio.wait_for(servers[0], 10)
    finally:
        await listener.close()
        for s in sessions:
            await asyncio.wait_for(s.close(), 10)
