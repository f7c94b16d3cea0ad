"""A bare QUIC client (aioquic's sans-IO QuicConnection on a UDP socket) that records
what a real libp2p QUIC listener does on the wire, for `test_quic_wire.py` and for
the QUIC section of docs/interop.md.

Why not p2pkit-quic: the point is to see the *other* side's choices (its transport
parameters, certificate, datagram sizes, how it ends and resets streams) with nothing
of ours in between but the libp2p TLS certificate (`p2pkit.crypto.tls_certificate`)
and the multistream-select messages.  Everything is bounded by `deadline` seconds.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import ssl
import struct
import time
from typing import Any

from aioquic.quic import events
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection
from aioquic.quic.logger import QuicLogger
from cryptography.hazmat.primitives import serialization

from p2pkit.crypto import generate_private_key
from p2pkit.crypto.tls_certificate import EXTENSION_OID, generate_certificate, verify_certificate
from p2pkit.multistream.messages import PROTOCOL_ID as MULTISTREAM
from p2pkit.multistream.messages import encode_message, parse_message
from p2pkit.peer import PeerId
from p2pkit.varint import decode_uvarint

ALPN = "libp2p"
LIBP2P_EXTENSION = EXTENSION_OID.dotted_string
#: QUIC CRYPTO_ERROR (0x100) + TLS alert certificate_required (116), RFC 9001 section 4.8
CERTIFICATE_REQUIRED = 0x100 + 116


@dataclasses.dataclass
class StreamEnd:
    """How one of our streams ended on the remote's side."""

    data: bytes = b""
    fin: bool = False
    reset_code: int | None = None  # RESET_STREAM from the remote
    stop_sending_code: int | None = None  # STOP_SENDING from the remote


@dataclasses.dataclass
class Probe:
    """What one connection showed."""

    alpn: str | None = None
    tls_version: str = ""
    cipher_suite: str = ""
    peer_id: str | None = None
    certificate: dict[str, Any] = dataclasses.field(default_factory=dict)
    transport_parameters: dict[str, Any] = dataclasses.field(default_factory=dict)
    datagram_sizes: list[int] = dataclasses.field(default_factory=list)
    closed: dict[str, Any] | None = None  # ConnectionTerminated, if the remote closed
    streams: dict[int, StreamEnd] = dataclasses.field(default_factory=dict)

    @property
    def max_datagram(self) -> int:
        return max(self.datagram_sizes, default=0)


def _identity() -> tuple[Any, str]:
    key = generate_private_key("ed25519")
    return key, str(PeerId.from_public_key(key.public_key))


class _Endpoint(asyncio.DatagramProtocol):
    def __init__(self, client: QuicClient) -> None:
        self.client = client

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.client.received(data, addr)


class QuicClient:
    """One libp2p QUIC connection from a fresh identity, driven by hand."""

    def __init__(self, *, client_certificate: bool = True, max_datagram_size: int = 1200):
        key, self.local_peer_id = _identity()
        cert = generate_certificate(key)
        self.logger = QuicLogger()
        config = QuicConfiguration(
            is_client=True,
            alpn_protocols=[ALPN],
            verify_mode=ssl.CERT_NONE,  # the libp2p extension is checked below instead
            max_datagram_size=max_datagram_size,
            quic_logger=self.logger,
        )
        if client_certificate:
            config.certificate = cert.certificate
            config.private_key = cert.private_key
        self.conn = QuicConnection(configuration=config)
        self.probe = Probe()
        self.transport: asyncio.DatagramTransport | None = None
        self.addr: tuple[str, int] = ("", 0)
        self.handshake = asyncio.Event()
        self.changed = asyncio.Event()
        self.timer: asyncio.TimerHandle | None = None

    # -- I/O shell

    async def connect(self, host: str, port: int) -> None:
        loop = asyncio.get_running_loop()
        self.addr = (host, port)
        self.transport, _ = await loop.create_datagram_endpoint(
            lambda: _Endpoint(self), remote_addr=self.addr
        )
        self.conn.connect(self.addr, now=time.monotonic())
        self.flush()
        waiter = asyncio.ensure_future(self.handshake.wait())
        closed = asyncio.ensure_future(self._wait_closed())
        _, pending = await asyncio.wait({waiter, closed}, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        if not self.handshake.is_set():
            raise ConnectionError(f"handshake failed: {self.probe.closed}")

    async def _wait_closed(self) -> None:
        while self.probe.closed is None:
            await self.wait_change()

    def received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.probe.datagram_sizes.append(len(data))
        self.conn.receive_datagram(data, addr, now=time.monotonic())
        self.process()

    def process(self) -> None:
        while (event := self.conn.next_event()) is not None:
            self.on_event(event)
        self.flush()
        self.changed.set()

    def flush(self) -> None:
        assert self.transport is not None
        for data, _ in self.conn.datagrams_to_send(now=time.monotonic()):
            self.transport.sendto(data)
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        at = self.conn.get_timer()
        if at is not None:
            loop = asyncio.get_running_loop()
            self.timer = loop.call_at(loop.time() + max(0.0, at - time.monotonic()), self.fire)

    def fire(self) -> None:
        self.timer = None
        self.conn.handle_timer(now=time.monotonic())
        self.process()

    async def wait_change(self) -> None:
        self.changed.clear()
        await self.changed.wait()

    def close(self, error_code: int = 0) -> None:
        if self.transport is None:
            return
        self.conn.close(error_code=error_code)
        self.flush()
        if self.timer is not None:
            self.timer.cancel()
        self.transport.close()
        self.transport = None

    # -- events

    def on_event(self, event: events.QuicEvent) -> None:
        if isinstance(event, events.HandshakeCompleted):
            self.on_handshake(event)
        elif isinstance(event, events.StreamDataReceived):
            end = self.probe.streams.setdefault(event.stream_id, StreamEnd())
            end.data += event.data
            end.fin = end.fin or event.end_stream
        elif isinstance(event, events.StreamReset):
            self.probe.streams.setdefault(
                event.stream_id, StreamEnd()
            ).reset_code = event.error_code
        elif isinstance(event, events.StopSendingReceived):
            self.probe.streams.setdefault(
                event.stream_id, StreamEnd()
            ).stop_sending_code = event.error_code
        elif isinstance(event, events.ConnectionTerminated):
            self.probe.closed = {
                "error_code": event.error_code,
                "frame_type": event.frame_type,
                "reason": event.reason_phrase,
            }

    def on_handshake(self, event: events.HandshakeCompleted) -> None:
        tls = self.conn.tls
        self.probe.alpn = event.alpn_protocol
        self.probe.tls_version = "TLS 1.3"  # aioquic speaks nothing else
        if tls.key_schedule is not None:
            self.probe.cipher_suite = tls.key_schedule.cipher_suite.name
        cert = tls._peer_certificate  # aioquic keeps the peer's leaf certificate here
        if cert is not None:
            der = cert.public_bytes(serialization.Encoding.DER)
            identity = verify_certificate(der)
            self.probe.peer_id = str(PeerId.from_public_key(identity))
            ext = cert.extensions.get_extension_for_oid(EXTENSION_OID)
            now = datetime.datetime.now(datetime.UTC)
            self.probe.certificate = {
                "key": getattr(getattr(cert.public_key(), "curve", None), "name", None)
                or type(cert.public_key()).__name__,
                "signature_hash": cert.signature_hash_algorithm.name
                if cert.signature_hash_algorithm
                else None,
                "extensions": [e.oid.dotted_string for e in cert.extensions],
                "libp2p_extension_critical": ext.critical,
                "valid_days_before": (now - cert.not_valid_before_utc).days,
                "valid_days_after": (cert.not_valid_after_utc - now).days,
                "subject": cert.subject.rfc4514_string(),
            }
        self.probe.transport_parameters = self._remote_parameters()
        self.handshake.set()

    def _remote_parameters(self) -> dict[str, Any]:
        """The remote's transport parameters, from aioquic's qlog trace."""
        for trace in self.logger.to_dict()["traces"]:
            for event in trace["events"]:
                data = event.get("data", {})
                if event.get("name") == "transport:parameters_set" and data.get("owner") == (
                    "remote"
                ):
                    return {k: v for k, v in data.items() if k != "owner"}
        return {}

    # -- streams

    async def select(self, protocol: str) -> int:
        """Open a bidirectional stream and negotiate `protocol` (multistream-select)."""
        sid = self.conn.get_next_available_stream_id()
        self.conn.send_stream_data(sid, encode_message(MULTISTREAM) + encode_message(protocol))
        self.process()
        answers = await self.read_messages(sid, 2)
        if answers != [MULTISTREAM, protocol]:
            raise ConnectionError(f"{protocol}: remote answered {answers}")
        return sid

    async def read_messages(self, sid: int, count: int) -> list[str]:
        while True:
            end = self.probe.streams.get(sid, StreamEnd())
            out, pos = [], 0
            while len(out) < count and (d := decode_uvarint(end.data, pos)) is not None:
                length, start = d
                if start + length > len(end.data):
                    break
                out.append(parse_message(end.data[start : start + length]))
                pos = start + length
            if len(out) == count:
                end.data = end.data[pos:]
                return out
            if end.fin or end.reset_code is not None or self.probe.closed is not None:
                raise ConnectionError(f"stream {sid} ended during negotiation: {end}")
            await self.wait_change()

    def send(self, sid: int, data: bytes, fin: bool = False) -> None:
        self.conn.send_stream_data(sid, data, end_stream=fin)
        self.process()

    def reset(self, sid: int, code: int) -> None:
        """RESET_STREAM and STOP_SENDING, as p2pkit-quic resets a stream."""
        self.conn.reset_stream(sid, code)
        self.conn.stop_stream(sid, code)
        self.process()

    async def until(self, sid: int, pred: Any, timeout: float) -> StreamEnd:
        async with asyncio.timeout(timeout):
            while True:
                end = self.probe.streams.setdefault(sid, StreamEnd())
                if pred(end) or self.probe.closed is not None:
                    return end
                await self.wait_change()


async def probe_listener(host: str, port: int, deadline: float = 20.0) -> Probe:
    """Handshake, then: perf download of 1 MB (datagram sizes), an echo stream ended with
    FIN (the remote's FIN comes back), an echo stream we reset (what the remote answers)."""
    client = QuicClient(max_datagram_size=1452)
    async with asyncio.timeout(deadline):
        await client.connect(host, port)
        try:
            sid = await client.select("/perf/1.0.0")
            client.send(sid, struct.pack(">Q", 1_000_000), fin=True)
            end = await client.until(sid, lambda e: e.fin or e.reset_code is not None, deadline)
            if len(end.data) != 1_000_000 or not end.fin:
                raise ConnectionError(
                    f"perf: got {len(end.data)} bytes, fin={end.fin}, closed={client.probe.closed}"
                )
            sid = await client.select("/echo/1.0.0")
            client.send(sid, b"hello", fin=True)
            await client.until(sid, lambda e: e.fin or e.reset_code is not None, deadline)
            sid = await client.select("/echo/1.0.0")
            client.send(sid, b"ping")
            await client.until(sid, lambda e: len(e.data) >= 4, deadline)
            client.reset(sid, 0)
            await client.until(
                sid,
                lambda e: e.reset_code is not None and e.stop_sending_code is not None,
                3.0,
            )
        except TimeoutError:
            pass  # what arrived is recorded; the caller checks it
        finally:
            client.close()
    return client.probe


async def probe_without_client_certificate(host: str, port: int, deadline: float = 10.0) -> Probe:
    """A client that sends no certificate: the listener must refuse the handshake."""
    client = QuicClient(client_certificate=False)
    try:
        async with asyncio.timeout(deadline):
            await client.connect(host, port)
            # a server may only notice after the client's Finished: give it a stream
            sid = client.conn.get_next_available_stream_id()
            client.send(sid, encode_message(MULTISTREAM))
            while client.probe.closed is None:
                await client.wait_change()
    except (ConnectionError, TimeoutError):
        pass
    finally:
        client.close()
    return client.probe
