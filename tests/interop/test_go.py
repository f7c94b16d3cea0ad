"""Against Go, both directions, on the libraries go-libp2p is built on: quic-go for
``/quic-v1``; flynn/noise and hashicorp/yamux for TCP + Noise + yamux.

The Go side is our own small program (``tests/interop/go/gopeer``) on those libraries,
with what go-libp2p adds written from the specs: the libp2p TLS certificate and the Noise
handshake payload with their checks, multistream-select, ping and echo.  go-libp2p itself
cannot be built offline here, but Debian ships the libraries (quic-go 0.29 with its
qtls, flynn/noise 1.0, hashicorp/yamux), so the QUIC, TLS 1.3, Noise and yamux wire is
Go's: quic-go's packet sizes (1252-byte Initials), zero-length client connection ids,
ACK and flow control; flynn/noise's handshake; hashicorp's windows and frames.  Built
in GOPATH mode (``benchmarks/_go.py``); skipped when Go or a library is missing, except
with CI=true (then a failure: interop must run in CI).  Our own Go program failing to
build is always a failure.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from multiaddr import Multiaddr

from p2pkit.builder import HostBuilder
from p2pkit.errors import PeerIdMismatch
from p2pkit.events import Connected, OpenedStream
from p2pkit.host import Host
from p2pkit.protocols.echo import PROTOCOL_ID as ECHO
from p2pkit.protocols.ping import PROTOCOL_ID as PING
from p2pkit.protocols.ping import ping

sys.path.append(str(Path(__file__).resolve().parents[2] / "benchmarks"))

from _go import GOPATH, build_go_program

SRC = Path(__file__).resolve().parent / "go" / "gopeer"
LIBRARIES = [
    GOPATH / "src" / "github.com" / "lucas-clemente" / "quic-go",
    GOPATH / "src" / "github.com" / "flynn" / "noise",
    GOPATH / "src" / "github.com" / "hashicorp" / "yamux",
]
TRANSPORTS = ["quic", "tcp"]
KiB = 1024


@pytest.fixture(scope="module")
def gopeer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    go = shutil.which("go")
    assert SRC.is_dir(), f"{SRC} is missing"  # ours: never a reason to skip
    if go is None or not all(lib.is_dir() for lib in LIBRARIES):
        msg = (
            "needs go, quic-go, flynn/noise and hashicorp/yamux (golang-go "
            "golang-github-lucas-clemente-quic-go-dev golang-github-flynn-noise-dev "
            "golang-github-hashicorp-yamux-dev)"
        )
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{msg} (CI=true: interop must run)", pytrace=False)
        pytest.skip(msg)
    try:
        return build_go_program(go, SRC, tmp_path_factory.mktemp("go"), timeout=600)
    except subprocess.CalledProcessError as exc:
        err = exc.stderr.decode(errors="replace") if exc.stderr else ""
        pytest.fail(f"our Go peer {SRC} does not build: {exc}\n{err}", pytrace=False)
    except (subprocess.TimeoutExpired, OSError) as exc:
        pytest.fail(f"go build of {SRC} failed: {exc}", pytrace=False)


@pytest.fixture
async def host() -> AsyncIterator[Host]:
    h = await (
        HostBuilder()
        .transport("quic")
        .transport("tcp")
        .security("noise")
        .muxer("yamux")
        .listen("/ip4/127.0.0.1/udp/0/quic-v1")
        .listen("/ip4/127.0.0.1/tcp/0")
        .option(enable_echo=True)
        .build()
        .start()
    )
    yield h
    await h.stop()


def _listen_addr(host: Host, transport: str) -> str:
    (addr,) = [a for a in host.listen_addrs if ("/quic-v1" in str(a)) == (transport == "quic")]
    return f"{addr}/p2p/{host.peer_id}"


@pytest.fixture(params=TRANSPORTS)
async def go_listener(
    gopeer: Path, request: pytest.FixtureRequest
) -> AsyncIterator[tuple[asyncio.subprocess.Process, str]]:
    proc = await asyncio.create_subprocess_exec(
        *(str(gopeer), "listen", request.param),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode().strip()
    assert line.startswith("LISTEN "), line
    yield proc, line.split()[1]
    if proc.returncode is None:
        proc.kill()
    await proc.wait()


async def _echo(host: Host, addr: Multiaddr, size: int) -> None:
    conn = await host.connect(addr)
    stream = await conn.new_stream(ECHO)
    payload = os.urandom(size)

    async def send() -> None:
        await stream.write(payload)
        await stream.close_write()

    sender = asyncio.create_task(send())
    got = bytearray()
    while chunk := await stream.read():
        got += chunk
    await sender
    assert hashlib.sha256(got).digest() == hashlib.sha256(payload).digest(), len(got)


async def test_p2pkit_dials_go(
    host: Host, go_listener: tuple[asyncio.subprocess.Process, str]
) -> None:
    proc, listen = go_listener
    addr = Multiaddr(listen)
    async with asyncio.timeout(60):
        conn = await host.connect(addr)
        assert str(conn.peer) == addr.value_for_protocol("p2p")
        assert conn.remote_addr is not None
        assert str(conn.remote_addr).startswith(listen.split("/p2p/")[0])
        rtts = await ping(await conn.new_stream(PING), 3)
        assert len(rtts) == 3
        # 20 concurrent echo streams with half-close, then one large one.
        await asyncio.gather(*(_echo(host, addr, 100 * KiB + i) for i in range(20)))
        await _echo(host, addr, 8 * 1024 * KiB)
        assert proc.stdout is not None
        seen = json.loads((await proc.stdout.readline()).decode().split(" ", 1)[1])
    # Go checked our certificate or Noise payload and derived our peer id from it.
    assert seen["remote_peer"] == str(host.peer_id)
    if "/quic-v1" in listen:
        assert seen["alpn"] == "libp2p"
    else:
        assert (seen["security"], seen["muxer"]) == ("/noise", "/yamux/1.0.0")
        assert (conn.security_protocol, conn.muxer_protocol) == ("/noise", "/yamux/1.0.0")


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_go_dials_p2pkit(host: Host, gopeer: Path, transport: str) -> None:
    addr = _listen_addr(host, transport)
    with host.events.subscribe(Connected, OpenedStream) as seen:
        proc = await asyncio.create_subprocess_exec(
            str(gopeer),
            *("dial", addr, "20", str(100 * KiB)),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(proc.communicate(), 60)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        assert proc.returncode == 0, err.decode()
        result = json.loads(out.decode().split("RESULT ", 1)[1])
        assert result["remote_peer"] == str(host.peer_id)  # Go checked our identity
        if transport == "quic":
            assert result["alpn"] == "libp2p"
        else:
            assert (result["security"], result["muxer"]) == ("/noise", "/yamux/1.0.0")
        assert len(result["ping_ms"]) == 3 and result["echo_streams"] == 20
        events = []
        while (event := seen.get_nowait()) is not None:
            events.append(event)
    # Our side: one inbound QUIC connection from the Go peer's id (from its certificate),
    # with its ping stream and 20 echo streams.
    go_peer = result["local_peer"]
    conns = [e.connection for e in events if isinstance(e, Connected)]
    assert [str(c.peer) for c in conns] == [go_peer]
    assert ("/quic-v1" in str(conns[0].remote_addr)) == (transport == "quic")
    opened = [e.protocol for e in events if isinstance(e, OpenedStream) and e.inbound]
    assert sorted(opened) == sorted([PING] + [ECHO] * 20)


async def test_p2pkit_refuses_go_under_another_peer_id(
    host: Host, go_listener: tuple[asyncio.subprocess.Process, str]
) -> None:
    _, listen = go_listener
    other = await HostBuilder().transport("quic").transport("tcp").build().start()
    try:
        wrong = Multiaddr(f"{listen.split('/p2p/')[0]}/p2p/{other.peer_id}")
        with pytest.raises(PeerIdMismatch, match=str(other.peer_id)):
            async with asyncio.timeout(20):
                await host.connect(wrong)
    finally:
        await other.stop()
