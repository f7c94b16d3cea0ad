"""p2pkit.peer.PeerId: derivation, text forms, validation of hostile input."""

from __future__ import annotations

import base64
import copy
import hashlib
import pickle

import base58
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pkit.crypto import generate_private_key, public_key_from_protobuf
from p2pkit.errors import InvalidKey, InvalidPeerId
from p2pkit.peer import PeerId
from p2pkit.varint import encode_uvarint

# Examples from libp2p/specs peer-ids/peer-ids.md ("String representation").
SPEC_SHA256_B58 = "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N"
SPEC_SHA256_CID = "bafzbeie5745rpv2m6tjyuugywy4d5ewrqgqqhfnf445he3omzpjbx5xqxe"
SPEC_ED25519_B58 = "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"


def _cid(codec: int, mh: bytes, version: int = 1) -> str:
    raw = encode_uvarint(version) + encode_uvarint(codec) + mh
    return "b" + base64.b32encode(raw).decode().lower().rstrip("=")


def test_spec_examples_parse() -> None:
    sha = PeerId.from_string(SPEC_SHA256_B58)
    assert sha.to_bytes()[:2] == b"\x12\x20" and len(sha.to_bytes()) == 34
    assert PeerId.from_string(SPEC_SHA256_CID) == sha  # same id in both forms
    assert sha.to_cid() == SPEC_SHA256_CID
    assert sha.extract_public_key() is None

    ed = PeerId.from_string(SPEC_ED25519_B58)
    assert ed.to_bytes()[:2] == b"\x00\x24"
    key = ed.extract_public_key()
    assert key is not None and key.to_protobuf() == ed.to_bytes()[2:]
    assert ed.matches_public_key(key)
    assert str(ed) == SPEC_ED25519_B58 == ed.to_base58()
    assert repr(ed) == f"PeerId('{SPEC_ED25519_B58}')"
    assert PeerId.from_string(ed.to_cid()) == ed
    assert ed.to_cid().startswith("bafz")


@pytest.mark.parametrize("key_type", ["ed25519", "secp256k1", "ecdsa"])
def test_derivation_and_round_trips(key_type: str) -> None:
    public = generate_private_key(key_type).public_key
    pid = PeerId.from_public_key(public)
    encoded = public.to_protobuf()
    if len(encoded) <= 42:
        assert pid.to_bytes() == b"\x00" + bytes([len(encoded)]) + encoded
        assert pid.extract_public_key() == public
    else:
        assert pid.to_bytes() == b"\x12\x20" + hashlib.sha256(encoded).digest()
        assert pid.extract_public_key() is None
    assert PeerId.from_string(pid.to_base58()) == pid
    assert PeerId.from_string(pid.to_cid()) == pid
    assert PeerId.from_bytes(pid.to_bytes()) == pid == PeerId(bytearray(pid.to_bytes()))
    assert pid.matches_public_key(public)
    assert not pid.matches_public_key(generate_private_key(key_type).public_key)


def test_other_multibase_cid_encodings() -> None:
    pid = PeerId.from_string(SPEC_ED25519_B58)
    raw = b"\x01\x72" + pid.to_bytes()
    assert PeerId.from_string("z" + base58.b58encode(raw).decode()) == pid
    assert PeerId.from_string("f" + raw.hex()) == pid
    assert PeerId.from_string("B" + base64.b32encode(raw).decode().rstrip("=")) == pid
    assert PeerId.from_string("m" + base64.b64encode(raw).decode().rstrip("=")) == pid
    assert PeerId.from_string("  " + pid.to_cid() + "\n") == pid
    n, b36 = int.from_bytes(raw, "big"), ""
    while n:
        n, digit = divmod(n, 36)
        b36 = "0123456789abcdefghijklmnopqrstuvwxyz"[digit] + b36
    assert PeerId.from_string("k" + b36) == pid  # base36: IPNS names
    assert PeerId.from_string("K" + b36.upper()) == pid
    with pytest.raises(InvalidPeerId):
        PeerId.from_string("k" + b36[:10] + "_" + b36[10:])  # int() alone would take it


def test_ipns_name_in_base36() -> None:
    # The IPNS name in the IPFS docs' gateway example: an Ed25519 key's libp2p-key CID.
    pid = PeerId.from_string("k51qzi5uqu5dlvj2baxnqndepeb86cbk3ng7n3i46uzyxzyqj2xjonzllnv0v8")
    key = pid.extract_public_key()
    assert key is not None and PeerId.from_public_key(key) == pid
    assert str(pid).startswith("12D3KooW")


def test_value_semantics() -> None:
    a = PeerId.from_string(SPEC_SHA256_B58)
    b = PeerId.from_string(SPEC_SHA256_CID)
    c = PeerId.from_string(SPEC_ED25519_B58)
    assert a == b and hash(a) == hash(b) and a != c
    assert len({a, b, c}) == 2
    assert {a: 1}[b] == 1
    assert a != SPEC_SHA256_B58  # not equal to its string
    assert sorted([a, c]) == sorted([c, a])
    assert pickle.loads(pickle.dumps(a)) == a
    assert copy.deepcopy(c) == c and copy.copy(c) == c
    with pytest.raises(AttributeError):
        a._bytes = b""
    with pytest.raises(AttributeError):
        a.foo = 1
    with pytest.raises(AttributeError):
        del a._bytes
    assert not hasattr(a, "__dict__")


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5", "multihash"),  # one char short
        ("QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N0", "base58"),  # '0' not base58
        ("12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SAx", "multihash"),
        ("1", "truncated"),
        ("xyz", "neither"),
        ("bafzbeie5745rpv2m6tjyuugywy4d5ewrqgqqhfnf445he3omzpjbx5xqx", "multibase|multihash"),
        ("b!!!!", "multibase"),
        ("b", "empty"),
        ("fzz", "multibase"),
        ("Q" * 300, "too long"),
        ("12D3KooWé", "base58"),
    ],
)
def test_malformed_strings(text: str, match: str) -> None:
    with pytest.raises(InvalidPeerId, match=match):
        PeerId.from_string(text)


def test_cid_codec_and_version_checked() -> None:
    mh = PeerId.from_string(SPEC_SHA256_B58).to_bytes()
    assert PeerId.from_string(_cid(0x72, mh)).to_bytes() == mh
    with pytest.raises(InvalidPeerId, match="codec 0x70"):
        PeerId.from_string(_cid(0x70, mh))  # dag-pb, e.g. an IPFS file CID
    with pytest.raises(InvalidPeerId, match="version"):
        PeerId.from_string(_cid(0x72, mh, version=2))


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"", "truncated"),
        (b"\x12", "truncated"),
        (b"\x12\x20" + bytes(31), "declares 32"),
        (b"\x12\x20" + bytes(33), "declares 32"),
        (b"\x12\x10" + bytes(16), "32 bytes"),
        (b"\x13\x20" + bytes(32), "unsupported multihash code"),  # sha2-512 code
        (b"\x00\x00", "identity"),
        (b"\x00\x2b" + bytes(43), "identity"),  # > 42 bytes must be hashed
        (b"\x80\x00", "varint"),  # non-minimal varint
    ],
)
def test_malformed_bytes(data: bytes, match: str) -> None:
    with pytest.raises(InvalidPeerId, match=match):
        PeerId(data)
    with pytest.raises(InvalidPeerId):
        PeerId.from_bytes(data)


def test_type_errors() -> None:
    with pytest.raises(TypeError):
        PeerId("Qm...")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        PeerId.from_string(b"Qm")  # type: ignore[arg-type]


def test_extract_public_key_of_bogus_identity_id() -> None:
    pid = PeerId(b"\x00\x04" + b"\x08\x01\x12\x00")  # Ed25519 with empty Data
    with pytest.raises(InvalidKey):
        pid.extract_public_key()
    ed = public_key_from_protobuf(PeerId.from_string(SPEC_ED25519_B58).to_bytes()[2:])
    assert not pid.matches_public_key(ed)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_random_text_only_raises_invalid_peer_id(text: str) -> None:
    try:
        pid = PeerId.from_string(text)
    except InvalidPeerId:
        return
    assert PeerId.from_bytes(pid.to_bytes()) == pid


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=48))
def test_random_bytes_only_raise_invalid_peer_id(data: bytes) -> None:
    try:
        pid = PeerId(data)
    except InvalidPeerId:
        return
    assert PeerId.from_string(str(pid)) == pid == PeerId.from_string(pid.to_cid())
