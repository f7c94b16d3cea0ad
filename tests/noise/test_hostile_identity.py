"""A Noise listener whose identity key cannot be decoded, over real loopback TCP.

The listener is an ordinary host whose public key protobuf carries a DER key with a
mangled algorithm (RSA) or curve (ECDSA) OID; it signs its Noise static key with the
real key, so everything but the key decoding is well formed.  The dialer must fail with
a typed error, and ``p2pkit ping`` with one line on stderr, not a traceback.
"""

from __future__ import annotations

import asyncio
import sys

import pytest

from p2pkit.config import HostBuilder
from p2pkit.crypto import PrivateKey, generate_private_key
from p2pkit.crypto.keys import encode_key_protobuf
from p2pkit.errors import DialError, HandshakeError, InvalidKey, P2PError
from p2pkit.host import Host

MANGLES = {
    "rsa": (bytes.fromhex("2a864886f70d010101"), bytes.fromhex("2a8648fef70d010101")),
    "ecdsa": (bytes.fromhex("2a8648ce3d030107"), bytes.fromhex("2a8648ce3d0b0107")),
}


def hostile_identity(key_type: str) -> PrivateKey:
    """A working private key whose advertised public key protobuf is undecodable."""
    key = generate_private_key(key_type)  # type: ignore[arg-type]
    old, new = MANGLES[key_type]
    der = key.public_key.to_bytes()
    assert der.count(old) == 1
    # The protobuf is what Noise sends and what the peer id derives from.
    key.public_key._protobuf = encode_key_protobuf(  # type: ignore[misc]
        key.key_type, der.replace(old, new)
    )
    return key


async def _hostile_listener(key_type: str, security: str = "noise") -> Host:
    host = (
        HostBuilder()
        .identity(hostile_identity(key_type))
        .security(security)
        .muxer("yamux")
        .transport("tcp")
        .listen("/ip4/127.0.0.1/tcp/0")
        .build()
    )
    return await host.start()


def _cause_chain(exc: BaseException) -> list[BaseException]:
    out: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and len(out) < 20:
        out.append(cur)
        cur = cur.__cause__
    return out


@pytest.mark.parametrize("security", ["noise", "plaintext"])
@pytest.mark.parametrize("key_type", ["rsa", "ecdsa"])
async def test_dialer_gets_a_typed_handshake_error(key_type, security):
    listener = await _hostile_listener(key_type, security)
    dialer = HostBuilder().security(security).muxer("yamux").transport("tcp").build()
    try:
        await dialer.start()
        with pytest.raises(P2PError) as info:
            async with asyncio.timeout(20):
                await dialer.connect(listener.addrs_with_peer_id[0])
        err = info.value
        # DialError lists the per-address failures; the one here is the handshake's.
        causes = [e for _, e in err.errors] if isinstance(err, DialError) else [err]
        assert causes and all(isinstance(e, HandshakeError) for e in causes), causes
        assert any(isinstance(c, InvalidKey) for c in _cause_chain(causes[0])), causes
        assert not dialer.connections()
    finally:
        await dialer.stop()
        await listener.stop()


@pytest.mark.parametrize("key_type", ["rsa", "ecdsa"])
async def test_cli_ping_prints_one_line_and_exits_nonzero(key_type):
    listener = await _hostile_listener(key_type)
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "p2pkit",
            "ping",
            str(listener.addrs_with_peer_id[0]),
            "--security",
            "noise",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            async with asyncio.timeout(60):
                out, err = await proc.communicate()
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    finally:
        await listener.stop()
    text = err.decode()
    assert proc.returncode not in (0, None), (out, text)
    assert "Traceback" not in text, text
    lines = text.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("p2pkit ping: "), text
    assert "identity key rejected" in lines[0], text
