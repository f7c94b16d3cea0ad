"""Two real hosts ping each other over /unix: built with the builder, from TOML, by the CLI."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from p2pkit.config import HostBuilder
from p2pkit.crypto import generate_private_key
from p2pkit.host import Host
from p2pkit.peer import PeerId
from p2pkit.protocols.ping import PROTOCOL_ID as PING
from p2pkit.protocols.ping import ping

CLI = [sys.executable, "-m", "p2pkit"]


async def _ping_over_unix(server: Host, client: Host, addr: str) -> None:
    async with server, client:
        conn = await client.connect(addr)
        assert conn.peer == server.peer_id
        rtts = await ping(await conn.new_stream(PING), 3)
        assert len(rtts) == 3 and all(r > 0 for r in rtts)


async def test_builder_hosts_ping_over_unix(sock_dir: str) -> None:
    addr = f"/unix{sock_dir}/a.sock"

    def builder() -> HostBuilder:
        return HostBuilder().transport("unix").security("noise").muxer("yamux")

    server = builder().listen(addr).build()
    client = builder().build()
    await _ping_over_unix(server, client, addr)


async def test_toml_hosts_ping_over_unix(sock_dir: str) -> None:
    addr = f"/unix{sock_dir}/b.sock"
    common = 'transports = ["unix"]\nsecurity = ["noise"]\nmuxers = ["mplex"]\n'
    server_toml = Path(sock_dir) / "server.toml"
    server_toml.write_text(
        f'[p2pkit]\n{common}listen = ["{addr}"]\n\n[p2pkit.plugins.unix]\nclose_linger = 0.1\n'
    )
    client_toml = Path(sock_dir) / "client.toml"
    client_toml.write_text(f"[p2pkit]\n{common}")
    server = Host.from_config(str(server_toml))
    client = Host.from_config(str(client_toml))
    await _ping_over_unix(server, client, addr)


@contextlib.contextmanager
def _cli_listener(listen: str) -> Iterator[str]:
    """``p2pkit listen --listen /unix/...`` in a subprocess; yields its /p2p/ address."""
    argv = [*CLI, "listen", "--listen", listen, "--transport", "unix"]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        try:
            assert proc.stdout is not None and proc.stderr is not None
            line = proc.stdout.readline()
            assert line.startswith(f"LISTEN {listen}/p2p/"), line or proc.stderr.read()
            yield line.split()[1]
        finally:
            proc.terminate()  # SIGTERM: the CLI stops the host and exits 0
            try:
                assert proc.wait(10) == 0
            finally:
                if proc.poll() is None:
                    proc.kill()


def _cli_ping(addr: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, "ping", addr, "--count", "2", "--json", "--transport", "unix"],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cli_listen_and_ping_over_unix(sock_dir: str) -> None:
    with _cli_listener(f"/unix{sock_dir}/c.sock") as addr:
        out = _cli_ping(addr)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert len(result["rtt_ms"]) == 2 and all(r > 0 for r in result["rtt_ms"])


def test_cli_ping_with_a_wrong_peer_id_fails(sock_dir: str) -> None:
    wrong = str(PeerId.from_public_key(generate_private_key().public_key))
    with _cli_listener(f"/unix{sock_dir}/d.sock") as addr:
        out = _cli_ping(addr.rsplit("/p2p/", 1)[0] + f"/p2p/{wrong}")
    assert out.returncode != 0
