"""TLS handshakes between two p2pkit peers: identities, ALPN, rejections, timeouts."""

from __future__ import annotations

import asyncio
import datetime
from typing import Any

import pytest
from cryptography import x509
from OpenSSL import SSL

from p2pkit.abc import SecureConnection
from p2pkit.crypto import generate_private_key
from p2pkit.crypto.tls_certificate import generate_certificate
from p2pkit.errors import HandshakeError, HandshakeTimeout, PeerIdMismatch
from p2pkit.plugins.spec import Components
from p2pkit.testing.memory import channel_pair
from p2pkit_tls import (
    PROTOCOL_ID,
    CertificateExpired,
    ExtensionSignatureInvalid,
    MissingExtension,
    TlsConnection,
    TlsOptions,
    TlsProtocolError,
    TlsSecurity,
    TooManyCertificates,
    UnknownCriticalExtension,
)
from p2pkit_tls.handshake import TlsSession
from p2pkit_tls.plugin import p2pkit_security_protocols
from p2pkit_tls.testing import (
    MPLEX,
    YAMUX,
    custom_certificate,
    handshake,
    make_pair,
    new_security,
    peer_id,
    security_with,
)

KEY_TYPES = ["ed25519", "secp256k1", "ecdsa", "rsa"]


async def _close(*conns: object) -> None:
    for c in conns:
        if isinstance(c, SecureConnection):
            await c.close()


@pytest.mark.parametrize("key_type", KEY_TYPES)
async def test_handshake_over_tcp_every_key_type(key_type: str) -> None:
    client, server = (
        new_security(key_type),
        new_security("ed25519" if key_type != "ed25519" else "rsa"),
    )
    a, b = await make_pair("tcp")
    ca, cb = await handshake(client, server, a, b, expected=server.local_peer)
    assert isinstance(ca, TlsConnection) and isinstance(cb, TlsConnection)
    assert ca.remote_peer == server.local_peer and cb.remote_peer == client.local_peer
    assert ca.local_peer == client.local_peer and cb.local_peer == server.local_peer
    assert ca.remote_public_key == server.private_key.public_key
    assert cb.remote_public_key == client.private_key.public_key
    assert ca.security_protocol == cb.security_protocol == PROTOCOL_ID
    assert ca.is_initiator and not cb.is_initiator
    assert ca.early_muxer is None and cb.early_muxer is None
    assert ca.remote_addr is not None and ca.remote_addr == cb.local_addr
    # Application data both ways, then a graceful close.
    await ca.write(b"hello")
    assert await cb.readexactly(5) == b"hello"
    await cb.write(b"x" * 100_000)
    assert await ca.readexactly(100_000) == b"x" * 100_000
    await _close(ca, cb)


async def test_inbound_without_expected_peer_accepts_anyone() -> None:
    client, server = new_security(), new_security()
    a, b = await make_pair("memory")
    ca, cb = await handshake(client, server, a, b, expected=None)
    assert isinstance(ca, TlsConnection) and ca.remote_peer == server.local_peer
    await _close(ca, cb)


@pytest.mark.parametrize(
    ("client_muxers", "server_muxers", "expected"),
    [
        ([YAMUX, MPLEX], [YAMUX, MPLEX], YAMUX),
        ([YAMUX, MPLEX], [MPLEX, YAMUX], YAMUX),  # the client's preference wins
        ([MPLEX, YAMUX], [YAMUX, MPLEX], MPLEX),
        ([MPLEX], [YAMUX, MPLEX], MPLEX),
        ([YAMUX], [MPLEX], None),  # no overlap: "libp2p", muxer via multistream-select
        ([], [YAMUX], None),
        ([YAMUX], [], None),
        ([], [], None),
    ],
)
async def test_alpn_early_muxer_matrix(
    client_muxers: list[str], server_muxers: list[str], expected: str | None
) -> None:
    client, server = new_security(), new_security()
    a, b = await make_pair("memory")
    ca, cb = await handshake(
        client, server, a, b, client_muxers=client_muxers, server_muxers=server_muxers
    )
    assert isinstance(ca, TlsConnection) and isinstance(cb, TlsConnection)
    assert ca.early_muxer == expected
    assert cb.early_muxer == expected
    await _close(ca, cb)


async def test_alpn_offer_has_libp2p_last() -> None:
    # What goes on the wire: read the client's ALPN list through the server's callback.
    client, server = new_security(), new_security()
    cs = TlsSession(client.identity, is_initiator=True, muxers=[YAMUX, MPLEX])
    ss = TlsSession(server.identity, is_initiator=False, muxers=[MPLEX])
    assert cs.alpn_protocols == [YAMUX.encode(), MPLEX.encode(), b"libp2p"]
    for _ in range(4):
        cs.do_handshake()
        ss.receive_data(cs.data_to_send())
        ss.do_handshake()
        cs.receive_data(ss.data_to_send())
    assert cs.handshake_complete and ss.handshake_complete
    assert cs.early_muxer == ss.early_muxer == MPLEX


def test_server_aborts_when_no_offered_alpn_is_ours() -> None:
    """tls.md: the server MUST abort if it supports none of the client's ALPN protocols
    (it used to go on without ALPN).  A client offering none at all is accepted."""
    server = new_security()
    for offered, fails in (([b"h2", b"http/1.1"], True), (None, False)):
        key = generate_private_key()
        cert = generate_certificate(key)
        ctx = SSL.Context(SSL.TLS_METHOD)
        ctx.set_min_proto_version(SSL.TLS1_3_VERSION)
        ctx.use_certificate(cert.certificate)
        ctx.use_privatekey(cert.private_key)
        ctx.set_verify(SSL.VERIFY_PEER, lambda *a: True)
        raw = SSL.Connection(ctx, None)
        raw.set_connect_state()
        if offered is not None:
            raw.set_alpn_protos(offered)
        ss = TlsSession(server.identity, is_initiator=False, muxers=[YAMUX])
        error: HandshakeError | None = None
        for _ in range(4):
            try:
                raw.do_handshake()
            except SSL.WantReadError:
                pass
            try:
                ss.receive_data(raw.bio_read(65536))
            except SSL.WantReadError:
                pass
            try:
                ss.do_handshake()
            except HandshakeError as exc:
                error = exc
                break
            out = ss.data_to_send()
            if out:
                raw.bio_write(out)
        if fails:
            assert error is not None and "no ALPN protocol" in str(error), error
            alert = ss.data_to_send()  # no_application_protocol (120), fatal
            assert alert and raw.bio_write(alert) and not ss.handshake_complete
            with pytest.raises(SSL.Error, match="no application protocol"):
                raw.do_handshake()
        else:
            assert error is None and ss.handshake_complete and ss.early_muxer is None


async def test_mitm_peer_id_mismatch() -> None:
    client, server, other = new_security(), new_security(), new_security()
    a, b = await make_pair("tcp")
    ca, cb = await handshake(client, server, a, b, expected=other.local_peer)
    assert isinstance(ca, PeerIdMismatch)
    assert ca.expected == other.local_peer and ca.actual == server.local_peer
    # The server learns through the TLS alert the client sent.
    assert isinstance(cb, HandshakeError)
    assert a.closed


@pytest.mark.parametrize(
    ("bad", "error"),
    [
        ({"tamper_signature": True}, ExtensionSignatureInvalid),
        ({"oid": x509.ObjectIdentifier("1.3.6.1.4.1.53594.1.9")}, UnknownCriticalExtension),
        (
            {
                "not_before": datetime.datetime(2000, 1, 1, tzinfo=datetime.UTC),
                "not_after": datetime.datetime(2001, 1, 1, tzinfo=datetime.UTC),
            },
            CertificateExpired,
        ),
        (
            {
                "extra": [
                    (
                        x509.UnrecognizedExtension(x509.ObjectIdentifier("1.2.3.4"), b"\x05\x00"),
                        True,
                    )
                ]
            },
            UnknownCriticalExtension,
        ),
    ],
)
async def test_client_rejects_bad_server_certificate(
    bad: dict[str, Any], error: type[Exception]
) -> None:
    key = generate_private_key("ed25519")
    server = security_with(key, custom_certificate(key, **bad))
    client = new_security()
    a, b = await make_pair("memory")
    ca, cb = await handshake(client, server, a, b, expected=server.local_peer)
    assert isinstance(ca, error), ca
    assert isinstance(cb, HandshakeError), cb


async def test_client_rejects_missing_extension() -> None:
    key = generate_private_key("ed25519")
    cert = custom_certificate(key, oid=x509.ObjectIdentifier("1.3.6.1.4.1.53594.1.9"))
    # Re-issue with the wrong OID non-critical: only "missing extension" remains.
    import dataclasses

    from cryptography.hazmat.primitives import hashes

    ext = next(iter(cert.certificate.extensions))
    builder = (
        x509.CertificateBuilder()
        .subject_name(cert.certificate.subject)
        .issuer_name(cert.certificate.issuer)
        .public_key(cert.private_key.public_key())
        .serial_number(1)
        .not_valid_before(cert.certificate.not_valid_before_utc)
        .not_valid_after(cert.certificate.not_valid_after_utc)
        .add_extension(ext.value, critical=False)
    )
    cert = dataclasses.replace(cert, certificate=builder.sign(cert.private_key, hashes.SHA256()))
    server = security_with(key, cert)
    a, b = await make_pair("memory")
    ca, cb = await handshake(new_security(), server, a, b)
    assert isinstance(ca, MissingExtension), ca
    assert isinstance(cb, HandshakeError)


async def test_server_rejects_bad_client_certificate() -> None:
    key = generate_private_key("secp256k1")
    client = security_with(key, custom_certificate(key, tamper_signature=True))
    server = new_security()
    a, b = await make_pair("tcp")
    ca, cb = await handshake(client, server, a, b, expected=server.local_peer)
    assert isinstance(cb, ExtensionSignatureInvalid), cb
    # TLS 1.3: the client's handshake finishes before the server has checked its
    # certificate; its first read then fails (alert) and no data was accepted.
    assert isinstance(ca, TlsConnection)
    with pytest.raises((TlsProtocolError, ConnectionError)):
        got = await asyncio.wait_for(ca.read(), 5)
        assert got == b""  # a bare EOF is also an acceptable way to learn it
        raise ConnectionError("EOF")
    await _close(ca)


@pytest.mark.parametrize("side", ["server", "client"])
async def test_two_certificates_rejected(side: str) -> None:
    key = generate_private_key("ed25519")
    liar = security_with(key, generate_certificate(key))
    extra = generate_certificate(generate_private_key("ed25519")).certificate
    liar.identity.context().add_extra_chain_cert(extra)
    honest = new_security()
    a, b = await make_pair("memory")
    if side == "server":  # the server sends two certificates: the client rejects
        ca, cb = await handshake(honest, liar, a, b)
        assert isinstance(ca, TooManyCertificates), ca
    else:  # the client sends two: the server rejects
        ca, cb = await handshake(liar, honest, a, b)
        assert isinstance(cb, TooManyCertificates), cb
    await _close(ca, cb)


async def test_server_requires_a_client_certificate() -> None:
    """A TLS 1.3 client that presents no certificate is refused."""
    server = new_security()
    a, b = channel_pair()
    ctx = SSL.Context(SSL.TLS_METHOD)
    ctx.set_min_proto_version(SSL.TLS1_3_VERSION)
    ctx.set_verify(SSL.VERIFY_NONE)
    anon = SSL.Connection(ctx, None)
    anon.set_connect_state()

    async def anonymous_client() -> None:
        while True:
            try:
                anon.do_handshake()
            except SSL.WantReadError:
                pass
            try:
                await a.write(anon.bio_read(65536))
            except SSL.WantReadError:
                pass
            data = await a.read()
            if not data:
                return
            anon.bio_write(data)

    task = asyncio.create_task(anonymous_client())
    with pytest.raises(HandshakeError):
        await server.secure_inbound(b)
    await asyncio.wait_for(task, 5)
    await a.close()


async def test_tls12_refused() -> None:
    server = new_security()
    a, b = channel_pair()
    ctx = SSL.Context(SSL.TLS_METHOD)
    ctx.set_max_proto_version(SSL.TLS1_2_VERSION)
    old = SSL.Connection(ctx, None)
    old.set_connect_state()
    with pytest.raises(SSL.WantReadError):
        old.do_handshake()
    await a.write(old.bio_read(65536))
    with pytest.raises(HandshakeError):
        await server.secure_inbound(b)
    await a.close()


async def test_handshake_timeout() -> None:
    server = TlsSecurity(generate_private_key("ed25519"), TlsOptions(handshake_timeout=0.2))
    a, b = channel_pair()  # nobody speaks on a
    with pytest.raises(HandshakeTimeout):
        await server.secure_inbound(b)
    assert b.closed
    a.reset()


async def test_peer_closes_during_handshake() -> None:
    client = new_security()
    a, b = channel_pair()

    async def hang_up() -> None:
        await b.read()
        await b.close()

    task = asyncio.create_task(hang_up())
    with pytest.raises(HandshakeError):
        await client.secure_outbound(a, None)
    await task


async def test_garbage_instead_of_tls() -> None:
    server = new_security()
    a, b = channel_pair()
    await a.write(b"GET / HTTP/1.1\r\n\r\n")
    with pytest.raises(HandshakeError):
        await server.secure_inbound(b)
    a.reset()


def test_plugin_descriptor() -> None:
    [spec] = p2pkit_security_protocols()
    assert (spec.kind, spec.name, spec.protocol_id, spec.options) == (
        "security",
        "tls",
        "/tls/1.0.0",
        TlsOptions,
    )
    key = generate_private_key("ed25519")
    sec = spec.factory(Components(private_key=key, peer_id=peer_id(key)), TlsOptions(3.0))
    assert isinstance(sec, TlsSecurity)
    assert sec.local_peer == peer_id(key) and sec.options.handshake_timeout == 3.0
    with pytest.raises(ValueError):
        TlsOptions(handshake_timeout=0)


async def test_certificate_shared_by_connections() -> None:
    client, server = new_security(), new_security()
    for _ in range(2):
        a, b = await make_pair("memory")
        ca, cb = await handshake(client, server, a, b)
        await _close(ca, cb)
    first = client.identity.certificate
    a, b = await make_pair("memory")
    ca, cb = await handshake(client, server, a, b)
    assert client.identity.certificate is first
    await _close(ca, cb)


def _drive(cs: TlsSession, ss: TlsSession) -> None:
    for _ in range(4):
        cs.do_handshake()
        ss.receive_data(cs.data_to_send())
        ss.do_handshake()
        cs.receive_data(ss.data_to_send())
    assert cs.handshake_complete and ss.handshake_complete


def test_no_sni_sent_and_sni_ignored() -> None:
    client, server = new_security(), new_security()
    cs = TlsSession(client.identity, is_initiator=True)
    ss = TlsSession(server.identity, is_initiator=False)
    _drive(cs, ss)
    assert ss._conn.get_servername() is None  # spec: clients MUST NOT send SNI
    # A (future-version) client that sends SNI is not refused: servers MUST ignore it.
    cs = TlsSession(client.identity, is_initiator=True)
    cs._conn.set_tlsext_host_name(b"future.example")
    ss = TlsSession(server.identity, is_initiator=False)
    _drive(cs, ss)
    assert ss.remote_peer == client.local_peer
