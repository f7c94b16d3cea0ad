"""p2pkit.crypto: libp2p key encodings (peer-ids spec vectors), signatures, key files."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from p2pkit.crypto import (
    EcdsaPrivateKey,
    Ed25519PrivateKey,
    Ed25519PublicKey,
    KeyType,
    PrivateKey,
    PublicKey,
    RsaPublicKey,
    Secp256k1PrivateKey,
    Secp256k1PublicKey,
    generate_private_key,
    load_private_key,
    private_key_from_cryptography,
    private_key_from_protobuf,
    public_key_from_cryptography,
    public_key_from_protobuf,
    read_private_key,
    write_private_key,
)
from p2pkit.errors import InvalidKey, UnsupportedKeyType
from p2pkit.peer import PeerId
from p2pkit.protobuf import decode_fields, encode_bytes_field, encode_varint_field

# -- test vectors of libp2p/specs peer-ids/peer-ids.md ("Test vectors"), verbatim -------
ECDSA_PRIVATE = bytes.fromhex(
    "08031279307702010104203E5B1FE9712E6C314942A750BD67485DE3C1EFE85B1BFB520AE8F9AE3D"
    "FA4A4CA00A06082A8648CE3D030107A14403420004DE3D300FA36AE0E8F5D530899D83ABAB44ABF3"
    "161F162A4BC901D8E6ECDA020E8B6D5F8DA30525E71D6851510C098E5C47C646A597FB4DCEC034E9"
    "F77C409E62"
)
ECDSA_PUBLIC = bytes.fromhex(
    "0803125b3059301306072a8648ce3d020106082a8648ce3d03010703420004de3d300fa36ae0e8f5"
    "d530899d83abab44abf3161f162a4bc901d8e6ecda020e8b6d5f8da30525e71d6851510c098e5c47"
    "c646a597fb4dcec034e9f77c409e62"
)
ED25519_PRIVATE = bytes.fromhex(
    "080112407e0830617c4a7de83925dfb2694556b12936c477a0e1feb2e148ec9da60fee7d1ed1e8fa"
    "e2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e"
)
ED25519_PUBLIC = bytes.fromhex(
    "080112201ed1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e"
)
SECP256K1_PRIVATE = bytes.fromhex(
    "0802122053DADF1D5A164D6B4ACDB15E24AA4C5B1D3461BDBD42ABEDB0A4404D56CED8FB"
)
SECP256K1_PUBLIC = bytes.fromhex(
    "08021221037777e994e452c21604f91de093ce415f5432f701dd8cd1a7a6fea0e630bfca99"
)
RSA_PRIVATE = bytes.fromhex(
    "080012ae123082092a0201000282020100e1beab071d08200bde24eef00d049449b07770ff991025"
    "7b2d7d5dda242ce8f0e2f12e1af4b32d9efd2c090f66b0f29986dbb645dae9880089704a94e5066d"
    "594162ae6ee8892e6ec70701db0a6c445c04778eb3de1293aa1a23c3825b85c6620a2bc3f82f9b0c"
    "309bc0ab3aeb1873282bebd3da03c33e76c21e9beb172fd44c9e43be32e2c99827033cf8d0f0c606"
    "f4579326c930eb4e854395ad941256542c793902185153c474bed109d6ff5141ebf9cd256cf58893"
    "a37f83729f97e7cb435ec679d2e33901d27bb35aa0d7e20561da08885ef0abbf8e2fb48d6a548704"
    "7a9ecb1ad41fa7ed84f6e3e8ecd5d98b3982d2a901b4454991766da295ab78822add5612a2df83bc"
    "ee814cf50973e80d7ef38111b1bd87da2ae92438a2c8cbcc70b31ee319939a3b9c761dbc13b5c086"
    "d6b64bf7ae7dacc14622375d92a8ff9af7eb962162bbddebf90acb32adb5e4e4029f1c96019949ec"
    "fbfeffd7ac1e3fbcc6b6168c34be3d5a2e5999fcbb39bba7adbca78eab09b9bc39f7fa4b93411f4c"
    "c175e70c0a083e96bfaefb04a9580b4753c1738a6a760ae1afd851a1a4bdad231cf56e9284d83248"
    "3df215a46c1c21bdf0c6cfe951c18f1ee4078c79c13d63edb6e14feaeffabc90ad317e4875fe6481"
    "01b0864097e998f0ca3025ef9638cd2b0caecd3770ab54a1d9c6ca959b0f5dcbc90caeefc4135bac"
    "a6fd475224269bbe1b02030100010282020100a472ffa858efd8588ce59ee264b957452f3673acdf"
    "5631d7bfd5ba0ef59779c231b0bc838a8b14cae367b6d9ef572c03c7883b0a3c652f5c24c316b1cc"
    "fd979f13d0cd7da20c7d34d9ec32dfdc81ee7292167e706d705efde5b8f3edfcba41409e642f8897"
    "357df5d320d21c43b33600a7ae4e505db957c1afbc189d73f0b5d972d9aaaeeb232ca20eebd5de6f"
    "e7f29d01470354413cc9a0af1154b7af7c1029adcd67c74b4798afeb69e09f2cb387305e73a1b5f4"
    "50202d54f0ef096fe1bde340219a1194d1ac9026e90b366cce0c59b239d10e4888f52ca1780824d3"
    "9ae01a6b9f4dd6059191a7f12b2a3d8db3c2868cd4e5a5862b8b625a4197d52c6ac77710116ebd3c"
    "ed81c4d91ad5fdfbed68312ebce7eea45c1833ca3acf7da2052820eacf5c6b07d086dabeb893391c"
    "71417fd8a4b1829ae2cf60d1749d0e25da19530d889461c21da3492a8dc6ccac7de83ac1c2185262"
    "c7473c8cc42f547cc9864b02a8073b6aa54a037d8c0de3914784e6205e83d97918b944f11b877b12"
    "084c0dd1d36592f8a4f8b8da5bb404c3d2c079b22b6ceabfbcb637c0dbe0201f0909d533f8bf308a"
    "da47aee641a012a494d31b54c974e58b87f140258258bb82f31692659db7aa07e17a5b2a0832c24e"
    "122d3a8babcc9ee74cbb07d3058bb85b15f6f6b2674aba9fd34367be9782d444335fbed31e3c4086"
    "c652597c27104938b47fa10282010100e9fdf843c1550070ca711cb8ff28411466198f0e212511c3"
    "186623890c0071bf6561219682fe7dbdfd81176eba7c4faba21614a20721e0fcd63768e6d925688e"
    "cc90992059ac89256e0524de90bf3d8a052ce6a9f6adafa712f3107a016e20c80255c9e37d8206d1"
    "bc327e06e66eb24288da866b55904fd8b59e6b2ab31bc5eab47e597093c63fab7872102d57b4c589"
    "c66077f534a61f5f65127459a33c91f6db61fc431b1ae90be92b4149a3255291baf94304e3efb77b"
    "1107b5a3bda911359c40a53c347ff9100baf8f36dc5cd991066b5bdc28b39ed644f404afe9213f4d"
    "31c9d4e40f3a5f5e3c39bebeb244e84137544e1a1839c1c8aaebf0c78a7fad590282010100f6fa1f"
    "1e6b803742d5490b7441152f500970f46feb0b73a6e4baba2aaf3c0e245ed852fc31d86a8e46eb48"
    "e90fac409989dfee45238f97e8f1f8e83a136488c1b04b8a7fb695f37b8616307ff8a8d63e8cfa0b"
    "4fb9b9167ffaebabf111aa5a4344afbabd002ae8961c38c02da76a9149abdde93eb389eb32595c29"
    "ba30d8283a7885218a5a9d33f7f01dbdf85f3aad016c071395491338ec318d39220e1c7bd69d3d6b"
    "520a13a30d745c102b827ad9984b0dd6aed73916ffa82a06c1c111e7047dcd2668f988a0570a7147"
    "4992eecf416e068f029ec323d5d635fd24694fc9bf96973c255d26c772a95bf8b7f876547a5beabf"
    "86f06cd21b67994f944e7a5493028201010095b02fd30069e547426a8bea58e8a2816f33688dac6c"
    "6f6974415af8402244a22133baedf34ce499d7036f3f19b38eb00897c18949b0c5a25953c71aeecc"
    "fc8f6594173157cc854bd98f16dffe8f28ca13b77eb43a2730585c49fc3f608cd811bb54b03b84bd"
    "daa8ef910988567f783012266199667a546a18fd88271fbf63a45ae4fd4884706da8befb9117c0a4"
    "d73de5172f8640b1091ed8a4aea3ed4641463f5ff6a5e3401ad7d0c92811f87956d1fd5f9a1d15c7"
    "f3839a08698d9f35f9d966e5000f7cb2655d7b6c4adcd8a9d950ea5f61bb7c9a33c17508f9baa313"
    "eecfee4ae493249ebe05a5d7770bbd3551b2eeb752e3649e0636de08e3d672e66cb90282010100ad"
    "93e4c31072b063fc5ab5fe22afacece775c795d0efdf7c704cfc027bde0d626a7646fc905bb5a801"
    "17e3ca49059af14e0160089f9190065be9bfecf12c3b2145b211c8e89e42dd91c38e9aa23ca73697"
    "063564f6f6aa6590088a738722df056004d18d7bccac62b3bafef6172fc2a4b071ea37f31eff7a07"
    "6bcab7dd144e51a9da8754219352aef2c73478971539fa41de4759285ea626fa3c72e7085be47d55"
    "4d915bbb5149cb6ef835351f231043049cd941506a034bf2f8767f3e1e42ead92f91cb3d75549b57"
    "ef7d56ac39c2d80d67f6a2b4ca192974bfc5060e2dd171217971002193dba12e7e4133ab201f0750"
    "0a90495a38610279b13a48d54f0c99028201003e3a1ac0c2b67d54ed5c4bbe04a7db99103659d33a"
    "4f9d35809e1f60c282e5988dddc964527f3b05e6cc890eab3dcb571d66debf3a5527704c87264b39"
    "54d7265f4e8d2c637dd89b491b9cf23f264801f804b90454d65af0c4c830d1aef76f597ef61b26ca"
    "857ecce9cb78d4f6c2218c00d2975d46c2b013fbf59b750c3b92d8d3ed9e6d1fd0ef1ec091a5c286"
    "a3fe2dead292f40f380065731e2079ebb9f2a7ef2c415ecbb488da98f3a12609ca1b6ec8c734032c"
    "8bd513292ff842c375d4acd1b02dfb206b24cd815f8e2f9d4af8e7dea0370b19c1b23cc531d78b40"
    "e06e1119ee2e08f6f31c6e2e8444c568d13c5d451a291ae0c9f1d4f27d23b3a00d60ad"
)
RSA_PUBLIC = bytes.fromhex(
    "080012a60430820222300d06092a864886f70d01010105000382020f003082020a0282020100e1be"
    "ab071d08200bde24eef00d049449b07770ff9910257b2d7d5dda242ce8f0e2f12e1af4b32d9efd2c"
    "090f66b0f29986dbb645dae9880089704a94e5066d594162ae6ee8892e6ec70701db0a6c445c0477"
    "8eb3de1293aa1a23c3825b85c6620a2bc3f82f9b0c309bc0ab3aeb1873282bebd3da03c33e76c21e"
    "9beb172fd44c9e43be32e2c99827033cf8d0f0c606f4579326c930eb4e854395ad941256542c7939"
    "02185153c474bed109d6ff5141ebf9cd256cf58893a37f83729f97e7cb435ec679d2e33901d27bb3"
    "5aa0d7e20561da08885ef0abbf8e2fb48d6a5487047a9ecb1ad41fa7ed84f6e3e8ecd5d98b3982d2"
    "a901b4454991766da295ab78822add5612a2df83bcee814cf50973e80d7ef38111b1bd87da2ae924"
    "38a2c8cbcc70b31ee319939a3b9c761dbc13b5c086d6b64bf7ae7dacc14622375d92a8ff9af7eb96"
    "2162bbddebf90acb32adb5e4e4029f1c96019949ecfbfeffd7ac1e3fbcc6b6168c34be3d5a2e5999"
    "fcbb39bba7adbca78eab09b9bc39f7fa4b93411f4cc175e70c0a083e96bfaefb04a9580b4753c173"
    "8a6a760ae1afd851a1a4bdad231cf56e9284d832483df215a46c1c21bdf0c6cfe951c18f1ee4078c"
    "79c13d63edb6e14feaeffabc90ad317e4875fe648101b0864097e998f0ca3025ef9638cd2b0caecd"
    "3770ab54a1d9c6ca959b0f5dcbc90caeefc4135baca6fd475224269bbe1b0203010001"
)

# (private vector, public vector, key type, Data length of the public key or None,
#  base58 peer id, CIDv1 peer id).  The peer ids are not in the spec; they were
#  cross-checked against independent implementations (rust-libp2p's RSA test uses the
#  same RSA id; a Haskell libp2p port pins all four).
VECTORS = [
    (
        ED25519_PRIVATE,
        ED25519_PUBLIC,
        KeyType.Ed25519,
        "12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq",
        "bafzaajaiaejcahwr5d5ofrfbis4l5d6uwr57hu5tjodrypfm6yaq6dsc2r2pzyt6",
    ),
    (
        SECP256K1_PRIVATE,
        SECP256K1_PUBLIC,
        KeyType.Secp256k1,
        "16Uiu2HAmLhLvBoYaoZfaMUKuibM6ac163GwKY74c5kiSLg5KvLpY",
        "bafzaajiiaijcca3xo7uzjzcsyilaj6i54cj44qk7kqzpoao5rti2pjx6udtdbp6kte",
    ),
    (
        ECDSA_PRIVATE,
        ECDSA_PUBLIC,
        KeyType.ECDSA,
        "QmVMT29id3TUASyfZZ6k9hmNyc2nYabCo4uMSpDw4zrgDk",
        "bafzbeidigywdclqvl5hxfefwp5onbffcfife7pza57mmfb4tiqmtkdjw64",
    ),
    (
        RSA_PRIVATE,
        RSA_PUBLIC,
        KeyType.RSA,
        "QmaeANgBs1DTSxWSrPPtobgQuxW8XTfsS4ydbK4rCHzqxG",
        "bafzbeifwzcumbiyql7bhv7fe7mixg6i7aohegq75k234m63bnw6dbicmzu",
    ),
]
VECTOR_IDS = ["ed25519", "secp256k1", "ecdsa", "rsa"]


@pytest.fixture(scope="module")
def vector_keys() -> dict[KeyType, PrivateKey]:
    # Decoding the 4096-bit RSA vector validates the key (~tens of ms): do it once.
    return {kt: private_key_from_protobuf(priv) for priv, _pub, kt, _b58, _cid in VECTORS}


@pytest.fixture(scope="module")
def rsa_key() -> PrivateKey:
    return generate_private_key(KeyType.RSA)


@pytest.fixture(params=["ed25519", "secp256k1", "ecdsa", "rsa"])
def any_key(request: pytest.FixtureRequest, rsa_key: PrivateKey) -> PrivateKey:
    if request.param == "rsa":
        return rsa_key
    return generate_private_key(request.param)


@pytest.mark.parametrize(("priv", "pub", "kt", "b58", "cid"), VECTORS, ids=VECTOR_IDS)
def test_spec_vectors(
    priv: bytes,
    pub: bytes,
    kt: KeyType,
    b58: str,
    cid: str,
    vector_keys: dict[KeyType, PrivateKey],
) -> None:
    private = vector_keys[kt]
    public = public_key_from_protobuf(pub)
    assert private.key_type is kt and public.key_type is kt
    # Decode and re-encode byte-identically.
    assert private.to_protobuf() == priv
    assert public.to_protobuf() == pub
    assert public.to_protobuf()[:1] == b"\x08" and public.to_protobuf()[1] == kt
    # The spec: "Implementations SHOULD check that they can produce the provided public
    # key from the private key."
    assert private.public_key == public
    assert private.public_key.to_protobuf() == pub
    # Peer id derivation and both text forms.
    pid = PeerId.from_public_key(public)
    assert pid.to_base58() == b58
    assert pid.to_cid() == cid
    assert PeerId.from_string(b58) == pid == PeerId.from_string(cid)
    assert pid.matches_public_key(public)
    if len(pub) <= 42:
        assert pid.to_bytes() == bytes([0, len(pub)]) + pub
        assert pid.extract_public_key() == public
    else:
        assert pid.to_bytes()[:2] == b"\x12\x20"
        assert pid.extract_public_key() is None
    # The vector keys sign and verify.
    sig = private.sign(b"libp2p")
    assert public.verify(b"libp2p", sig)
    assert not public.verify(b"libp2P", sig)


def test_vector_data_field_shapes(vector_keys: dict[KeyType, PrivateKey]) -> None:
    ed = vector_keys[KeyType.Ed25519]
    assert len(ed.to_bytes()) == 64 and ed.to_bytes()[32:] == ed.public_key.to_bytes()
    assert len(ed.public_key.to_bytes()) == 32
    k1 = vector_keys[KeyType.Secp256k1]
    assert len(k1.to_bytes()) == 32 and len(k1.public_key.to_bytes()) == 33
    assert k1.public_key.to_bytes()[0] in (2, 3)
    p256 = vector_keys[KeyType.ECDSA]
    # SEC1 ECPrivateKey (RFC 5915) and SubjectPublicKeyInfo, as Go's x509 writes them.
    reloaded = serialization.load_der_private_key(p256.to_bytes(), None)
    assert isinstance(reloaded, ec.EllipticCurvePrivateKey)
    assert reloaded.private_numbers() == p256.to_cryptography().private_numbers()
    assert serialization.load_der_public_key(p256.public_key.to_bytes()) is not None
    r = vector_keys[KeyType.RSA]
    assert r.to_cryptography().key_size == 4096
    assert r.to_bytes().startswith(b"\x30\x82")  # PKCS#1 RSAPrivateKey SEQUENCE


def test_sign_verify_and_tamper(any_key: PrivateKey) -> None:
    public = any_key.public_key
    msg = b"noise-libp2p-static-key:" + bytes(range(32))
    sig = any_key.sign(msg)
    assert public.verify(msg, sig)
    assert not public.verify(msg + b"x", sig)
    assert not public.verify(msg, b"")
    assert not public.verify(msg, b"\x30\x00")
    assert not public.verify(msg, bytes(len(sig)))
    flipped = bytearray(sig)
    flipped[len(sig) // 2] ^= 0x01
    assert not public.verify(msg, bytes(flipped))
    other = generate_private_key(any_key.key_type) if any_key.key_type != KeyType.RSA else None
    if other is not None:
        assert not other.public_key.verify(msg, sig)


def test_signature_schemes_are_the_spec_ones(any_key: PrivateKey) -> None:
    """Verify our signatures with plain ``cryptography`` using the spec's scheme."""
    msg = b"scheme check"
    sig = any_key.sign(msg)
    pub = any_key.public_key.to_cryptography()
    if any_key.key_type is KeyType.Ed25519:
        assert len(sig) == 64
        pub.verify(sig, msg)
    elif any_key.key_type is KeyType.RSA:
        from cryptography.hazmat.primitives.asymmetric import padding

        pub.verify(sig, msg, padding.PKCS1v15(), hashes.SHA256())
    else:
        pub.verify(sig, msg, ec.ECDSA(hashes.SHA256()))  # DER-encoded ECDSA over SHA-256


def test_secp256k1_signatures_are_low_s() -> None:
    n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    key = generate_private_key("secp256k1")
    for i in range(40):
        _r, s = decode_dss_signature(key.sign(b"msg %d" % i))
        assert s <= n // 2


def test_secp256k1_high_s_signature_still_verifies() -> None:
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    key = generate_private_key("secp256k1")
    r, s = decode_dss_signature(key.sign(b"m"))
    assert key.public_key.verify(b"m", encode_dss_signature(r, n - s))


def test_peer_id_prefixes(rsa_key: PrivateKey) -> None:
    assert str(PeerId.from_public_key(generate_private_key().public_key)).startswith("12D3KooW")
    k1 = generate_private_key("SECP256K1").public_key
    assert str(PeerId.from_public_key(k1)).startswith("16Uiu2")
    assert str(PeerId.from_public_key(rsa_key.public_key)).startswith("Qm")
    assert str(PeerId.from_public_key(generate_private_key("ecdsa").public_key)).startswith("Qm")


@pytest.mark.parametrize(
    ("name", "kt"),
    [("ed25519", KeyType.Ed25519), ("Secp256k1", KeyType.Secp256k1), ("ECDSA", KeyType.ECDSA)],
)
def test_generate_by_name(name: str, kt: KeyType) -> None:
    key = generate_private_key(name)
    assert key.key_type is kt
    assert private_key_from_protobuf(key.to_protobuf()) == key
    assert public_key_from_protobuf(key.public_key.to_protobuf()) == key.public_key


def test_generate_defaults_and_errors() -> None:
    assert generate_private_key().key_type is KeyType.Ed25519
    with pytest.raises(UnsupportedKeyType):
        generate_private_key("dsa")
    with pytest.raises(ValueError):
        generate_private_key("rsa", bits=1024)
    with pytest.raises(ValueError):
        generate_private_key(KeyType.RSA, bits=16384)


def test_rsa_generate_and_round_trip(rsa_key: PrivateKey) -> None:
    assert rsa_key.key_type is KeyType.RSA
    assert rsa_key.to_cryptography().key_size == 2048
    again = private_key_from_protobuf(rsa_key.to_protobuf())
    assert again == rsa_key and again.public_key == rsa_key.public_key
    assert isinstance(public_key_from_protobuf(rsa_key.public_key.to_protobuf()), RsaPublicKey)


def test_rsa_size_bounds_when_decoding() -> None:
    def spki(n: int) -> bytes:
        pub = rsa.RSAPublicNumbers(65537, n).public_key()
        return pub.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def message(data: bytes) -> bytes:
        return encode_varint_field(1, 0) + encode_bytes_field(2, data)

    with pytest.raises(InvalidKey, match="bits"):
        public_key_from_protobuf(message(spki((1 << 511) | 1)))
    with pytest.raises(InvalidKey, match="bits"):
        public_key_from_protobuf(message(spki((1 << 8200) | 1)))
    # 1024-bit keys from others are still accepted for decoding.
    small = rsa.generate_private_key(65537, 1024)
    assert private_key_from_cryptography(small).to_cryptography().key_size == 1024
    key = public_key_from_protobuf(message(spki((1 << 1023) | 1)))
    assert key.key_type is KeyType.RSA


def test_ed25519_private_encodings() -> None:
    key = Ed25519PrivateKey.generate()
    data = key.to_bytes()
    seed, pub = data[:32], data[32:]
    assert Ed25519PrivateKey.from_bytes(seed) == key  # bare seed
    assert Ed25519PrivateKey.from_bytes(data + pub) == key  # legacy 96-byte form
    with pytest.raises(InvalidKey, match="differ"):
        Ed25519PrivateKey.from_bytes(data + bytes(32))
    with pytest.raises(InvalidKey, match="does not match"):
        Ed25519PrivateKey.from_bytes(seed + bytes(32))
    with pytest.raises(InvalidKey):
        Ed25519PrivateKey.from_bytes(data[:63])
    with pytest.raises(InvalidKey):
        Ed25519PublicKey.from_bytes(pub[:31])


def test_secp256k1_uncompressed_is_canonicalized() -> None:
    key = Secp256k1PrivateKey.generate()
    uncompressed = key.public_key.to_cryptography().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    parsed = Secp256k1PublicKey.from_bytes(uncompressed)
    assert parsed == key.public_key
    assert parsed.to_bytes() == key.public_key.to_bytes()
    with pytest.raises(InvalidKey):
        Secp256k1PublicKey.from_bytes(b"\x02" + bytes(32))  # x = 0 is not on the curve
    with pytest.raises(InvalidKey):
        Secp256k1PublicKey.from_bytes(b"\x05" + bytes(32))
    with pytest.raises(InvalidKey, match="range"):
        Secp256k1PrivateKey.from_bytes(bytes(32))
    with pytest.raises(InvalidKey, match="range"):
        Secp256k1PrivateKey.from_bytes(b"\xff" * 32)


def test_from_cryptography_mapping() -> None:
    ed = ed25519.Ed25519PrivateKey.generate()
    assert private_key_from_cryptography(ed).key_type is KeyType.Ed25519
    assert public_key_from_cryptography(ed.public_key()).key_type is KeyType.Ed25519
    k1 = ec.generate_private_key(ec.SECP256K1())
    assert private_key_from_cryptography(k1).key_type is KeyType.Secp256k1
    assert public_key_from_cryptography(k1.public_key()).key_type is KeyType.Secp256k1
    for curve in (ec.SECP256R1(), ec.SECP384R1(), ec.SECP521R1()):
        k = ec.generate_private_key(curve)
        wrapped = private_key_from_cryptography(k)
        assert isinstance(wrapped, EcdsaPrivateKey)
        assert public_key_from_cryptography(k.public_key()) == wrapped.public_key
        sig = wrapped.sign(b"x")
        assert wrapped.public_key.verify(b"x", sig)
        assert private_key_from_protobuf(wrapped.to_protobuf()) == wrapped
        assert public_key_from_protobuf(wrapped.public_key.to_protobuf()) == wrapped.public_key
        assert wrapped.to_cryptography() is k
    with pytest.raises(UnsupportedKeyType):
        private_key_from_cryptography(ec.generate_private_key(ec.BrainpoolP256R1()))
    with pytest.raises(UnsupportedKeyType):
        public_key_from_cryptography(object())
    with pytest.raises(UnsupportedKeyType):
        private_key_from_cryptography(ed.public_key())


def test_equality_and_hash() -> None:
    a = generate_private_key()
    b = private_key_from_protobuf(a.to_protobuf())
    assert a == b and hash(a) == hash(b)
    assert a.public_key == b.public_key and hash(a.public_key) == hash(b.public_key)
    assert len({a.public_key, b.public_key, generate_private_key().public_key}) == 2
    assert a != generate_private_key()
    assert a.public_key != "not a key"
    assert isinstance(a.public_key, PublicKey)
    assert a.to_bytes().hex() not in repr(a)  # no secret in repr


@pytest.mark.parametrize("fmt", ["pem", "protobuf"])
def test_key_file_round_trip(any_key: PrivateKey, tmp_path: Path, fmt: str) -> None:
    path = tmp_path / "identity.key"
    write_private_key(path, any_key, format=fmt)  # type: ignore[arg-type]
    if sys.platform != "win32":
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    loaded = read_private_key(path)
    assert loaded == any_key and loaded.key_type is any_key.key_type
    assert loaded.public_key == any_key.public_key
    content = path.read_bytes()
    if fmt == "pem":
        assert content.startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS#8
    else:
        assert content == any_key.to_protobuf()
    assert [p.name for p in tmp_path.iterdir()] == ["identity.key"]  # no temp file left


def test_write_replaces_existing_file_and_tightens_mode(tmp_path: Path) -> None:
    path = tmp_path / "k"
    path.write_bytes(b"old")
    os.chmod(path, 0o644)
    key = generate_private_key()
    write_private_key(str(path), key, format="protobuf")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert read_private_key(str(path)) == key
    with pytest.raises(ValueError):
        write_private_key(path, key, format="der")  # type: ignore[arg-type]


def test_load_private_key_other_pem_flavours() -> None:
    k1 = ec.generate_private_key(ec.SECP256K1())
    sec1 = k1.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    assert load_private_key(b"\n" + sec1).key_type is KeyType.Secp256k1
    encrypted = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pw"),
    )
    with pytest.raises(InvalidKey):
        load_private_key(encrypted)
    with pytest.raises(InvalidKey):
        load_private_key(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    with pytest.raises(InvalidKey):
        load_private_key(b"garbage")


def _msg(type_value: int, data: bytes) -> bytes:
    return encode_varint_field(1, type_value) + encode_bytes_field(2, data)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x08\x01",  # Data missing
        encode_bytes_field(2, bytes(32)),  # Type missing
        _msg(1, bytes(32)) + encode_varint_field(1, 1),  # duplicate Type
        _msg(1, bytes(32)) + encode_bytes_field(2, bytes(32)),  # duplicate Data
        encode_bytes_field(1, b"\x01") + encode_bytes_field(2, bytes(32)),  # Type wrong wire type
        encode_varint_field(1, 1) + encode_varint_field(2, 5),  # Data wrong wire type
        _msg(1, bytes(32))[:-1],  # truncated
        _msg(1, bytes(31)),  # Ed25519 key too short
        _msg(2, bytes(33)),  # secp256k1 bad prefix
        _msg(3, b"\x30\x03\x02\x01\x00"),  # ECDSA bad DER
        _msg(0, b"not der"),  # RSA bad DER
        _msg(3, bytes.fromhex("302a300506032b6570032100") + bytes(32)),  # Ed25519 SPKI as ECDSA
    ],
)
def test_malformed_public_keys(data: bytes) -> None:
    with pytest.raises(InvalidKey):
        public_key_from_protobuf(data)


def test_unknown_key_type_is_unsupported() -> None:
    with pytest.raises(UnsupportedKeyType):
        public_key_from_protobuf(_msg(4, bytes(32)))
    with pytest.raises(UnsupportedKeyType):
        private_key_from_protobuf(_msg(99, bytes(32)))
    assert issubclass(UnsupportedKeyType, InvalidKey)


def test_unknown_fields_are_ignored_and_dropped_on_reencode() -> None:
    key = generate_private_key().public_key
    data = key.to_protobuf() + encode_bytes_field(9, b"extra")
    parsed = public_key_from_protobuf(data)
    assert parsed == key and parsed.to_protobuf() == key.to_protobuf()


def test_malformed_private_keys() -> None:
    for data in (_msg(1, bytes(10)), _msg(2, bytes(31)), _msg(3, b"junk"), _msg(0, b"junk")):
        with pytest.raises(InvalidKey):
            private_key_from_protobuf(data)
    # An RSA DER under the ECDSA type (and vice versa) is rejected.
    rsa_der = decode_fields(RSA_PRIVATE)[2][0]
    assert isinstance(rsa_der, bytes)
    with pytest.raises(InvalidKey, match="ECDSA private key DER holds"):
        private_key_from_protobuf(_msg(3, rsa_der))
    ecdsa_der = decode_fields(ECDSA_PRIVATE)[2][0]
    assert isinstance(ecdsa_der, bytes)
    with pytest.raises(InvalidKey, match="RSA private key DER holds"):
        private_key_from_protobuf(_msg(0, ecdsa_der))


def test_pem_is_pkcs8(any_key: PrivateKey) -> None:
    pem = any_key.to_pem()
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    assert load_private_key(pem) == any_key
