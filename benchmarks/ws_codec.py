"""WebSocket framing cost: the libraries' parsers against p2pkit-websocket's reader.

Why: the README of ``packages/transport-websocket`` chooses how frames are parsed by
this measurement.  One process, no sockets: 256 KiB binary messages (the size our
writer sends) parsed from 1 MiB reads, masked (client to server) and unmasked (server
to client), and messages built.  wsproto is measured when it is installed (it is not a
dependency: ``pip install wsproto``).

    python benchmarks/ws_codec.py [--mib 512]
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

from websockets.frames import Frame, Opcode
from websockets.protocol import Protocol, Side, State

from p2pkit_websocket.frames import Data, FrameReader, FrameWriter

MSG = 256 * 1024
READ = 1 << 20


def _wire(masked: bool) -> bytes:
    payload = os.urandom(MSG)
    writer = FrameWriter(mask=masked, max_frame_size=MSG)
    return b"".join(bytes(p) for _ in range(READ // MSG) for p in writer.message([payload]))


def rate(fn: Callable[[], int], total_mib: int) -> float:
    """MB/s of ``fn`` (which returns payload bytes handled), run until ``total_mib``."""
    done, start = 0, time.perf_counter()
    while done < total_mib << 20:
        done += fn()
    return done / 1e6 / (time.perf_counter() - start)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--mib", type=int, default=512)
    mib = p.parse_args().mib
    for masked in (True, False):
        wire = _wire(masked)
        ours = FrameReader(expect_masked=masked, max_message_size=1 << 30)

        def ours_recv(ours: FrameReader = ours, wire: bytes = wire) -> int:
            n = 0
            for ev in ours.receive_data(memoryview(wire)):
                if type(ev) is Data:
                    n += len(ev.unmasked())
            return n

        side = Side.SERVER if masked else Side.CLIENT
        lib = Protocol(side, state=State.OPEN, max_size=None)

        def lib_recv(lib: Protocol = lib, wire: bytes = wire) -> int:
            lib.receive_data(wire)
            return sum(len(f.data) for f in lib.events_received() if isinstance(f, Frame))

        kind = "masked  " if masked else "unmasked"
        print(f"receive {kind}: p2pkit {rate(ours_recv, mib):8.0f} MB/s   "
              f"websockets {rate(lib_recv, mib):8.0f} MB/s", end="")  # fmt: skip
        try:
            from wsproto.frame_protocol import FrameProtocol
        except ImportError:
            print()
            continue
        wp = FrameProtocol(client=not masked, extensions=[])

        def wsproto_recv(wp: FrameProtocol = wp, wire: bytes = wire) -> int:
            wp.receive_bytes(wire)
            return sum(len(f.payload) for f in wp.received_frames())

        print(f"   wsproto {rate(wsproto_recv, mib):8.0f} MB/s")
    payload = os.urandom(MSG)
    for masked in (True, False):
        writer = FrameWriter(mask=masked, max_frame_size=MSG)
        lib = Protocol(Side.CLIENT if masked else Side.SERVER, state=State.OPEN)

        def ours_send(writer: FrameWriter = writer) -> int:
            writer.message([payload])
            return MSG

        def lib_send(lib: Protocol = lib) -> int:
            lib.send_frame(Frame(Opcode.BINARY, payload))
            lib.data_to_send()
            return MSG

        kind = "masked  " if masked else "unmasked"
        print(f"send    {kind}: p2pkit {rate(ours_send, mib):8.0f} MB/s   "
              f"websockets {rate(lib_send, mib):8.0f} MB/s", end="")  # fmt: skip
        try:
            from wsproto.frame_protocol import FrameProtocol
        except ImportError:
            print()
            continue
        wps = FrameProtocol(client=masked, extensions=[])

        def wsproto_send(wps: FrameProtocol = wps) -> int:
            wps.send_data(payload, fin=True)
            return MSG

        print(f"   wsproto {rate(wsproto_send, mib):8.0f} MB/s")


if __name__ == "__main__":
    main()
