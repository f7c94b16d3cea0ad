"""aioquic's sans-IO ``QuicConnection``, adjusted for libp2p (libp2p/specs ``quic``).

What changes against stock aioquic, and why:

* **The libp2p TLS handshake**: both sides present the libp2p certificate
  (:mod:`p2pkit.crypto.tls_certificate`); the server requests the client's certificate
  (aioquic only does so as a test switch); the peer's certificate is verified by the
  libp2p rules *inside* the handshake, so a bad peer gets a TLS alert
  (``bad_certificate``) and never a connection.  CA and host-name checks are off: the
  certificates are self-signed and the identity is the libp2p key in the extension.
* **Flow-control credit follows the application**: stock aioquic doubles its windows
  as data arrives, whether or not anyone reads it.  Here the session raises
  ``MAX_STREAM_DATA`` / ``MAX_DATA`` only for bytes the application consumed
  (:meth:`Libp2pQuicConnection.grant`), so receive buffers are bounded by the windows.
* **No unidirectional streams** (libp2p uses none): the peer may open zero; and
  ``active_connection_id_limit`` 2 (the minimum: we do not migrate).
* **Key exchange groups**: X25519 and P-256 only (stock aioquic also offers P-384 and
  X448 and generates a key for each in every ClientHello); cipher suites: see
  :data:`CIPHER_SUITES`.
* **Large datagrams on loopback** (:mod:`p2pkit_quic.loopback`): the peer's
  ``max_udp_payload_size`` is kept, so the session can raise the datagram size once
  the handshake shows the path is loopback;
  STREAM frames then carry their length as a 4-byte varint (stock aioquic writes 2
  bytes, which caps a frame at 16 KiB and corrupts larger ones).  A stream whose
  frame took its last pending byte is marked empty at once (stock aioquic finds out
  on its next pass, which costs one more frame attempt per packet).
* **No pacing on loopback** (from the same switch): aioquic's pacer charges every
  packet as a full datagram, which with 65000-byte datagrams held small packets back
  for milliseconds; loopback has no bottleneck queue for pacing to protect.
* **Handshake state released** (:mod:`p2pkit_quic.release`): aioquic's three 16 KiB
  TLS output buffers shrink and the TLS context keeps only what it still reads once
  the handshake is complete; the keys, CRYPTO streams and packet spaces of the
  handshake go once it is confirmed.
* **Peer certificates verified once** (:mod:`p2pkit_quic.certcache`): a reconnecting
  peer presents the same certificate; its libp2p checks are not repeated.
* **At most two ACK frames per packet are acted on** (:data:`MAX_ACK_FRAMES_PER_PACKET`;
  more are parsed and ignored): aioquic copies the list of packets in flight for every
  ACK frame, so a peer packing hundreds of ACK frames into each packet made us do
  that hundreds of times per packet.  Peers send one per packet number space.
* **Received ranges are bounded and bisected** (:mod:`p2pkit_quic.ranges`): every
  stream and CRYPTO stream records what it received in a ``RangeSet`` whose ``add``
  bisects and which holds at most 1000 (CRYPTO: 100) gaps, 4096 over a connection's
  streams; stock aioquic scans the whole list per frame, so one-byte frames at every
  other offset cost quadratic CPU.
* **Cached epoch sets**: aioquic computes each frame handler's allowed packet epochs
  from a string (``EPOCHS("IH01")``) for every connection, half its constructor's cost
  (14 of 27 µs); the function is pure, so it is cached (:func:`functools.cache`).
* **Built only when used** (:mod:`p2pkit_quic.lean`): the frame-handler table binds
  an entry at the first frame of its type (an idle connection has seen a handful of
  the 33); empty queues cost nothing until something is queued.

These touch aioquic internals (``_write_stream_limits``, ``_write_connection_limits``,
``tls._set_peer_certificate``...), which is why ``aioquic`` is pinned to a minor range.
"""

from __future__ import annotations

import contextlib
import functools
import ssl
from typing import TYPE_CHECKING, Any

from aioquic import tls
from aioquic._buffer import Buffer  # the C type itself (aioquic.buffer re-exports it)
from aioquic.buffer import size_uint_var
from aioquic.quic import connection as aioquic_connection
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnectionError, QuicReceiveContext
from aioquic.quic.packet import (
    QuicErrorCode,
    QuicFrameType,
    QuicProtocolVersion,
    pull_ack_frame,
    pull_quic_transport_parameters,
)

from p2pkit.crypto.tls_certificate import CertificateError
from p2pkit_quic import release
from p2pkit_quic._ids import ALPN
from p2pkit_quic.certcache import verify_peer_chain
from p2pkit_quic.lean import LeanConnection
from p2pkit_quic.loopback import DEFAULT_MAX_UDP_PAYLOAD, LoopbackPath
from p2pkit_quic.ranges import (
    MAX_CONNECTION_GAPS,
    MAX_CRYPTO_GAPS,
    MAX_STREAM_GAPS,
    GapBudget,
    harden,
)
from p2pkit_quic.stream import RESET_CODE

if TYPE_CHECKING:
    from aioquic.quic.packet_builder import QuicPacketBuilder
    from aioquic.quic.stream import QuicStream

    from p2pkit.crypto import PublicKey
    from p2pkit.crypto.tls_certificate import HostCertificate
    from p2pkit_quic.options import QuicOptions

if not hasattr(aioquic_connection.EPOCHS, "cache_info"):  # (see the module docstring)
    aioquic_connection.EPOCHS = functools.cache(aioquic_connection.EPOCHS)

SUPPORTED_GROUPS = (tls.Group.X25519, tls.Group.SECP256R1)
CIPHER_SUITES = [tls.CipherSuite.AES_128_GCM_SHA256, tls.CipherSuite.CHACHA20_POLY1305_SHA256]
"""AES-128-GCM is the one every TLS 1.3 stack must have (RFC 8446, 9.1); ChaCha20 for
peers without AES hardware.  (Stock aioquic also offers AES-256-GCM, and a client runs
one key schedule per offered suite until the server picks.)"""
MAX_ACK_FRAMES_PER_PACKET = 2
"""ACK frames of one packet that are acted on; later ones are parsed and ignored."""
MAX_FRAME_CAPACITY = 1 + 8 + 8
"""Room for a MAX_STREAM_DATA frame (type, stream id, limit: varints)."""


def make_configuration(
    certificate: HostCertificate, options: QuicOptions, *, is_client: bool
) -> QuicConfiguration:
    """A QUIC v1 configuration carrying our libp2p certificate (both roles)."""
    return QuicConfiguration(
        is_client=is_client,
        alpn_protocols=[ALPN],
        certificate=certificate.certificate,
        private_key=certificate.private_key,
        verify_mode=ssl.CERT_NONE,  # the libp2p rules are checked in the handshake
        supported_versions=[QuicProtocolVersion.VERSION_1],
        cipher_suites=list(CIPHER_SUITES),
        max_datagram_size=options.max_datagram_size,
        max_data=options.connection_window,
        max_stream_data=options.stream_window,
        idle_timeout=options.idle_timeout,
    )


class Libp2pQuicConnection(LoopbackPath, LeanConnection):
    """See the module docstring."""

    # Our own attributes live in slots, not in the instance dict: aioquic's constructor
    # fills that dict with 85 attributes, the most a 128-entry table holds; one more
    # and CPython grows it to 256 entries (3.3 KB instead of 1.6 KB per connection).
    __slots__ = (
        "_ack_context",
        "_acks_in_packet",
        "_gaps",
        "_libp2p_options",
        "_release_pending",
        "_resets_when_unblocked",
        "certificate_error",
        "consumed",
        "peer_max_udp_payload_size",
        "remote_public_key",
    )

    remote_public_key: PublicKey | None
    """The peer's libp2p identity key, once its certificate verified."""
    certificate_error: CertificateError | None
    _release_pending: bool
    _resets_when_unblocked: set[int] | None
    """Our streams reset while still beyond the peer's MAX_STREAMS (see reset_unopened)."""
    consumed: int
    """Bytes the application read (or we discarded) over all streams."""

    def __init__(self, *, options: QuicOptions, **kwargs: Any) -> None:
        self.remote_public_key = None
        self.certificate_error = None
        self._release_pending = False
        self._resets_when_unblocked = None
        self._ack_context: QuicReceiveContext | None = None
        self._acks_in_packet = 0
        self.peer_max_udp_payload_size = DEFAULT_MAX_UDP_PAYLOAD
        self._libp2p_options = options
        self.consumed = 0
        self._gaps = GapBudget(MAX_CONNECTION_GAPS, self._count_gaps)
        super().__init__(**kwargs)
        self._local_max_streams_bidi.value = self._local_max_streams_bidi.sent = options.max_streams
        self._local_max_streams_uni.value = self._local_max_streams_uni.sent = 0
        # We never migrate: the peer need not issue us spare connection ids (stock
        # aioquic asks for 8, each a NEW_CONNECTION_ID frame built at connect time).
        self._local_active_connection_id_limit = 2

    def reset_unopened(self, stream_id: int) -> bool:
        """Reset a stream of ours that is still beyond the peer's MAX_STREAMS, so never
        on the wire: True if it is one (the reset is then held until the peer allows the
        stream).  aioquic would send RESET_STREAM and STOP_SENDING for it at once: a
        stream the peer did not allow, which quic-go answers by closing the whole
        connection (STREAM_STATE_ERROR).  The id cannot be skipped either (opening a
        later stream opens it implicitly), so it is reset once it opens."""
        stream = self._streams.get(stream_id)
        if stream is None or not stream.is_blocked:
            return False
        if self._resets_when_unblocked is None:
            self._resets_when_unblocked = set()
        self._resets_when_unblocked.add(stream_id)
        return True

    def _unblock_streams(self, is_unidirectional: bool) -> None:
        super()._unblock_streams(is_unidirectional)
        held = self._resets_when_unblocked
        if not held:
            return
        for stream_id in list(held):
            stream = self._streams.get(stream_id)
            if stream is None or not stream.is_blocked:
                held.discard(stream_id)
                if stream is not None:
                    with contextlib.suppress(Exception):  # as p2pkit_quic.flow does
                        self.reset_stream(stream_id, RESET_CODE)
                    with contextlib.suppress(Exception):
                        self.stop_stream(stream_id, RESET_CODE)
        if not held:
            self._resets_when_unblocked = None

    def _count_gaps(self) -> int:
        # Called only by ranges that _initialize put in place: the crypto streams exist.
        streams = [*self._streams.values(), *self._crypto_streams.values()]
        return sum(len(stream.receiver._ranges) for stream in streams)

    # -- TLS ------------------------------------------------------------------------------

    def _initialize(self, peer_cid: bytes) -> None:
        super()._initialize(peer_cid)
        context = self.tls
        # Key shares: X25519 first, P-256 as the fallback every TLS 1.3 stack has.
        # Stock aioquic also generates P-384 and X448 keys for every ClientHello (about
        # 1 ms of CPU per dial that no libp2p peer needs).
        context._supported_groups = list(SUPPORTED_GROUPS)
        if not self._is_client:
            context._request_client_certificate = True
        stock = context._set_peer_certificate

        def set_peer_certificate(certificate: tls.Certificate) -> None:
            stock(certificate)
            try:
                chain = [der for der, _ in certificate.certificates]
                self.remote_public_key = verify_peer_chain(chain)
            except CertificateError as exc:
                self.certificate_error = exc
                raise tls.AlertBadCertificate(str(exc)) from exc

        context._set_peer_certificate = set_peer_certificate  # type: ignore[method-assign]
        for crypto in self._crypto_streams.values():
            harden(crypto, MAX_CRYPTO_GAPS, QuicFrameType.CRYPTO, self._gaps)

    def release_handshake_state(self) -> None:
        """The handshake is complete: see :func:`p2pkit_quic.release.after_completion`."""
        release.after_completion(self)

    def _confirm_handshake(self) -> None:
        super()._confirm_handshake()
        self._release_pending = True

    def receive_datagram(self, data: bytes, addr: Any, now: float) -> None:
        super().receive_datagram(data, addr, now)
        self._ack_context = None  # (its packet is processed: not kept until the next ACK)
        if self._release_pending:  # between datagrams: see p2pkit_quic.release
            self._release_pending = False
            release.after_confirmation(self)

    # -- acknowledgements ---------------------------------------------------------------------

    def _handle_ack_frame(self, context: QuicReceiveContext, frame_type: int, buf: Buffer) -> None:
        if context is not self._ack_context:  # a new packet (one context per packet)
            self._ack_context = context
            self._acks_in_packet = 0
        self._acks_in_packet += 1
        if self._acks_in_packet <= MAX_ACK_FRAMES_PER_PACKET:
            super()._handle_ack_frame(context, frame_type, buf)
            return
        try:
            pull_ack_frame(buf)
        except ValueError as exc:  # as aioquic: a negative packet number
            raise QuicConnectionError(
                error_code=QuicErrorCode.FRAME_ENCODING_ERROR,
                frame_type=frame_type,
                reason_phrase=str(exc),
            ) from exc
        if frame_type == QuicFrameType.ACK_ECN:
            for _ in range(3):
                buf.pull_uint_var()

    # -- streams ----------------------------------------------------------------------------

    # aioquic calls these for every STREAM frame and every send; a stream it holds is
    # returned as it is (a held stream is never a discarded one), a new one hardened.

    def _get_or_create_stream(self, frame_type: int, stream_id: int) -> QuicStream:
        stream = self._streams.get(stream_id)
        if stream is None:
            stream = super()._get_or_create_stream(frame_type, stream_id)
            harden(stream, MAX_STREAM_GAPS, QuicFrameType.STREAM_BASE, self._gaps)
        return stream

    def _get_or_create_stream_for_send(self, stream_id: int) -> QuicStream:
        stream = self._streams.get(stream_id)
        if stream is None:
            stream = super()._get_or_create_stream_for_send(stream_id)
            harden(stream, MAX_STREAM_GAPS, QuicFrameType.STREAM_BASE, self._gaps)
        return stream

    def _parse_transport_parameters(self, data: bytes, from_session_ticket: bool = False) -> None:
        super()._parse_transport_parameters(data, from_session_ticket)
        params = pull_quic_transport_parameters(Buffer(data=data))
        if params.max_udp_payload_size is not None:
            self.peer_max_udp_payload_size = params.max_udp_payload_size

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, Any]]:
        # A server whose first datagram did not decrypt has no network path: stock
        # aioquic raises IndexError here (found by fuzz/quic.py).  Nothing to send.
        if not self._network_paths:
            return []
        return super().datagrams_to_send(now)

    # -- flow-control credit ---------------------------------------------------------------

    def grant(self, stream: QuicStream | None, consumed: int, stream_consumed: int) -> bool:
        """Record ``consumed`` more bytes read; ``stream_consumed`` is the stream's total.

        Raises the windows to consumed + window when at least a quarter of a window can
        be granted (batched: one frame per quarter window, not per read); returns True
        when a frame is now due (the caller schedules a transmit).
        """
        options = self._libp2p_options
        self.consumed += consumed
        due = False
        limit = self._local_max_data
        target = self.consumed + options.connection_window
        if target - limit.value >= options.connection_window // 4:
            limit.value = target
            due = True
        if stream is not None and stream.max_stream_data_local:
            target = stream_consumed + options.stream_window
            if target - stream.max_stream_data_local >= options.stream_window // 4:
                stream.max_stream_data_local = target
                due = True
        return due

    def _write_stream_limits(
        self, builder: QuicPacketBuilder, space: Any, stream: QuicStream
    ) -> None:
        # Stock aioquic doubles max_stream_data_local here; we only send what grant() set.
        if stream.max_stream_data_local_sent != stream.max_stream_data_local:
            buf = builder.start_frame(
                QuicFrameType.MAX_STREAM_DATA,
                capacity=MAX_FRAME_CAPACITY,
                handler=self._on_max_stream_data_delivery,
                handler_args=(stream,),
            )
            assert stream.stream_id is not None  # only crypto streams have none
            buf.push_uint_var(stream.stream_id)
            buf.push_uint_var(stream.max_stream_data_local)
            stream.max_stream_data_local_sent = stream.max_stream_data_local

    def _write_connection_limits(self, builder: QuicPacketBuilder, space: Any) -> None:
        # Stock aioquic doubles max_data when half is used; grant() raises it instead.
        # Doubling is prevented by keeping "used * 2 > value" false for the call.
        limit = self._local_max_data
        used = limit.used
        limit.used = 0
        try:
            super()._write_connection_limits(builder, space)
        finally:
            limit.used = used

    def _write_stream_frame(
        self, builder: QuicPacketBuilder, space: Any, stream: QuicStream, max_offset: int
    ) -> int:
        # Stock aioquic, except the length field: 4 bytes, so one frame may fill a
        # 64 KiB datagram (RFC 9000 varints allow any length encoding).
        sender = stream.sender
        assert stream.stream_id is not None
        overhead = (
            1
            + 4
            + size_uint_var(stream.stream_id)
            + (size_uint_var(sender.next_offset) if sender.next_offset else 0)
        )
        previous_send_highest = sender.highest_offset
        frame = sender.get_frame(builder.remaining_flight_space - overhead, max_offset)
        if frame is None:
            return 0
        if not len(sender._pending) and not sender._pending_eof:
            # Nothing left to send: say so now, as get_frame would only on its next
            # call, which aioquic makes in one more pass over an empty packet.
            sender.buffer_is_empty = True
        frame_type = QuicFrameType.STREAM_BASE | 2  # with a length
        if frame.offset:
            frame_type |= 4
        if frame.fin:
            frame_type |= 1
        buf = builder.start_frame(
            frame_type,
            capacity=overhead,
            handler=sender.on_data_delivery,
            handler_args=(frame.offset, frame.offset + len(frame.data), frame.fin),
        )
        buf.push_uint_var(stream.stream_id)
        if frame.offset:
            buf.push_uint_var(frame.offset)
        buf.push_uint32(len(frame.data) | 0x80000000)
        buf.push_bytes(frame.data)
        return sender.highest_offset - previous_send_highest
