"""Send a file to a peer, with progress and a SHA-256 check, configured from TOML.

    python examples/file_transfer.py                              # demo: 8 MB, both ends here
    python examples/file_transfer.py receive DIR [--config FILE]  # prints its address
    python examples/file_transfer.py send ADDRESS FILE [--config FILE]

The hosts come from a TOML file (``Host.from_config``): ``examples/file_transfer.toml``
by default, whose ``[p2pkit]`` table picks the stack and the listen address; the
example's own settings live in ``[file_transfer]`` next to it (p2pkit reads only its
own table).

The protocol, ``/p2pkit-example/file/1.0.0``, one stream per file: the sender writes a
header (file name length as u16, the name in UTF-8, the size as u64, big-endian), the
bytes, and closes its side; the receiver writes the file, hashes it as it goes and
answers with the 32-byte SHA-256 it computed, which the sender compares with its own.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import struct
import sys
import tempfile
import time
import tomllib
from pathlib import Path
from typing import Any

from p2pkit import Host, load_config
from p2pkit.abc import MuxedStream
from p2pkit.loops import run

PROTOCOL = "/p2pkit-example/file/1.0.0"
HEADER = struct.Struct(">H")
SIZE = struct.Struct(">Q")
DEFAULT_CONFIG = Path(__file__).with_name("file_transfer.toml")


def settings(config: Path) -> dict[str, Any]:
    """The example's own table, ``[file_transfer]`` (chunk size, max file size)."""
    with open(config, "rb") as fh:
        table = tomllib.load(fh).get("file_transfer", {})
    return {"chunk_size": 256 * 1024, "max_size": 1 << 30, **table}


class Progress:
    """A line per 10 % step: enough to watch a transfer, few enough for a log."""

    def __init__(self, what: str, total: int) -> None:
        self.what, self.total, self.done, self.shown = what, total, 0, -1
        self.start = time.perf_counter()

    def add(self, n: int) -> None:
        self.done += n
        step = self.done * 10 // self.total if self.total else 10
        if step != self.shown:
            self.shown = step
            rate = self.done / max(time.perf_counter() - self.start, 1e-9) / 1e6
            line = f"{self.what} {step * 10:3d}% ({self.done / 1e6:.1f} MB, {rate:.1f} MB/s)"
            print(line, flush=True)


# -- receiving --------------------------------------------------------------------------------


def receiver(out_dir: Path, conf: dict[str, Any], *, show_progress: bool = True) -> Any:
    """The stream handler: store one file under ``out_dir``, answer with its SHA-256."""

    async def handle(stream: MuxedStream) -> None:
        (length,) = HEADER.unpack(await stream.readexactly(HEADER.size))
        name = Path((await stream.readexactly(length)).decode()).name  # no paths from peers
        (size,) = SIZE.unpack(await stream.readexactly(SIZE.size))
        if not name or size > conf["max_size"]:
            stream.reset()
            return
        digest = hashlib.sha256()
        progress = Progress(f"received {name}", size)
        # File I/O runs in a worker thread (asyncio.to_thread): a slow disk must not
        # stall the event loop, which serves every connection of the host.
        fh = await asyncio.to_thread(open, out_dir / name, "wb")
        pending = bytearray()  # written in chunk_size pieces: one thread hop per piece
        try:
            while chunk := await stream.read(conf["chunk_size"]):
                pending += chunk
                if len(pending) >= conf["chunk_size"]:
                    await asyncio.to_thread(fh.write, pending)
                    pending = bytearray()
                digest.update(chunk)
                if show_progress:
                    progress.add(len(chunk))
                else:
                    progress.done += len(chunk)
            await asyncio.to_thread(fh.write, pending)
        finally:
            await asyncio.to_thread(fh.close)
        if progress.done != size:
            print(f"{name}: expected {size} bytes, got {progress.done}")
            stream.reset()
            return
        await stream.write(digest.digest())
        await stream.close()
        print(f"saved {out_dir / name} (sha256 {digest.hexdigest()})", flush=True)

    return handle


# -- sending ------------------------------------------------------------------------------------


async def send_file(host: Host, address: str, path: Path, conf: dict[str, Any]) -> bool:
    """Send ``path`` to the peer at ``address``; True if the peer's SHA-256 matches."""
    size = (await asyncio.to_thread(path.stat)).st_size
    stream = await host.new_stream(address, [PROTOCOL])
    name = path.name.encode()
    await stream.write(HEADER.pack(len(name)) + name + SIZE.pack(size))
    digest = hashlib.sha256()
    progress = Progress(f"sent {path.name}", size)
    fh = await asyncio.to_thread(open, path, "rb")
    try:
        while chunk := await asyncio.to_thread(fh.read, conf["chunk_size"]):
            await stream.write(chunk)
            digest.update(chunk)
            progress.add(len(chunk))
    finally:
        await asyncio.to_thread(fh.close)
    await stream.close_write()
    theirs = await stream.readexactly(32)
    await stream.close()
    ok = theirs == digest.digest()
    print(f"sha256 {'ok' if ok else 'MISMATCH'}: {digest.hexdigest()}")
    return ok


# -- commands -----------------------------------------------------------------------------------


async def receive(out_dir: Path, config: Path) -> None:
    async with Host.from_config(config) as host:
        host.set_stream_handler(PROTOCOL, receiver(out_dir, settings(config)))
        print(f"LISTEN {host.addrs_with_peer_id[0]}", flush=True)
        await asyncio.Event().wait()  # until Ctrl-C


async def send(address: str, path: Path, config: Path) -> bool:
    async with Host.from_config(config, listen=[]) as host:  # a sender listens nowhere
        return await send_file(host, address, path, settings(config))


async def demo(config: Path, src: Path, out: Path) -> bool:
    """Both ends in this process: send ``src`` into the directory ``out``."""
    async with Host.from_config(config) as receiving:
        handler = receiver(out, settings(config), show_progress=False)  # one progress
        receiving.set_stream_handler(PROTOCOL, handler)
        address = str(receiving.addrs_with_peer_id[0])
        print(f"receiver listens on {address}")
        return await send(address, src, config)


def run_demo(config: Path, loop: str) -> bool:
    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp, "random.bin"), Path(tmp, "received")
        out.mkdir()
        src.write_bytes(os.urandom(8_000_000))
        ok = run(demo(config, src, out), loop)
        return ok and (out / src.name).read_bytes() == src.read_bytes()


def main(argv: list[str]) -> int:
    config = DEFAULT_CONFIG
    if "--config" in argv:
        i = argv.index("--config")
        config, argv = Path(argv[i + 1]), argv[:i] + argv[i + 2 :]
    loop = load_config(config).event_loop  # [p2pkit] event_loop: asyncio or uvloop
    if not argv:
        return 0 if run_demo(config, loop) else 1
    if argv[0] == "receive" and len(argv) == 2:
        try:
            run(receive(Path(argv[1]), config), loop)
        except KeyboardInterrupt:
            pass
        return 0
    if argv[0] == "send" and len(argv) == 3:
        return 0 if run(send(argv[1], Path(argv[2]), config), loop) else 1
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
