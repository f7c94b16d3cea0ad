"""A relay that delays every packet (UDP) and every chunk (TCP) by a fixed one-way time.

Used by ``quic_throughput.py --rtt``: a path where a round trip costs time, as on a
real network, without kernel support (this machine's kernel has no netem qdisc) and
without touching loopback, which other jobs share.  Both directions of both transports
are delayed alike, so QUIC and TCP meet the same path; the relay runs in a process of
its own, so its CPU is not the measured hosts'.

    python benchmarks/_delay_relay.py --delay-ms 5 --tcp 127.0.0.1:4001 --udp 127.0.0.1:4002
    # prints: RELAY <tcp port> <udp port>  (the ports to dial instead)

Order is kept (every packet waits the same time); nothing is dropped or reordered.
One UDP socket per client address towards the target, as a NAT would.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
from typing import Any


class _UdpFront(asyncio.DatagramProtocol):
    def __init__(self, target: tuple[str, int], delay: float) -> None:
        self.target = target
        self.delay = delay
        self.transport: asyncio.DatagramTransport | None = None
        self.backs: dict[Any, asyncio.DatagramTransport] = {}
        self.loop = asyncio.get_running_loop()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Any) -> None:
        back = self.backs.get(addr)
        if back is None:
            self.loop.create_task(self._open_back(addr, data))
            return
        self.loop.call_later(self.delay, back.sendto, data)

    async def _open_back(self, addr: Any, first: bytes) -> None:
        front = self

        class Back(asyncio.DatagramProtocol):
            def datagram_received(self, data: bytes, _from: Any) -> None:
                assert front.transport is not None
                front.loop.call_later(front.delay, front.transport.sendto, data, addr)

        if addr in self.backs:  # a second datagram raced the first one's socket
            self.loop.call_later(self.delay, self.backs[addr].sendto, first)
            return
        back, _ = await self.loop.create_datagram_endpoint(Back, remote_addr=self.target)
        self.backs[addr] = back
        self.loop.call_later(self.delay, back.sendto, first)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    loop = asyncio.get_running_loop()
    while chunk := await reader.read(1 << 16):
        loop.call_later(delay, writer.write, chunk)
    loop.call_later(delay, writer.write_eof)


async def _main(delay: float, tcp: tuple[str, int], udp: tuple[str, int]) -> None:
    async def on_tcp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*tcp)
        for s in (writer, up_writer):
            s.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        await asyncio.gather(
            _pipe(reader, up_writer, delay), _pipe(up_reader, writer, delay), return_exceptions=True
        )
        await asyncio.sleep(delay)
        for s in (writer, up_writer):
            s.close()

    server = await asyncio.start_server(on_tcp, "127.0.0.1", 0)
    loop = asyncio.get_running_loop()
    front, _ = await loop.create_datagram_endpoint(
        lambda: _UdpFront(udp, delay), local_addr=("127.0.0.1", 0)
    )
    tcp_port = server.sockets[0].getsockname()[1]
    udp_port = front.get_extra_info("sockname")[1]
    print("RELAY", tcp_port, udp_port, flush=True)
    await loop.run_in_executor(None, input)  # until stdin closes
    server.close()


def _hostport(text: str) -> tuple[str, int]:
    host, port = text.rsplit(":", 1)
    return host, int(port)


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--delay-ms", type=float, required=True, help="one-way delay")
    ap.add_argument("--tcp", type=_hostport, required=True)
    ap.add_argument("--udp", type=_hostport, required=True)
    args = ap.parse_args()
    try:
        asyncio.run(_main(args.delay_ms / 1000, args.tcp, args.udp))
    except EOFError:
        pass


if __name__ == "__main__":
    main()
