"""libp2p identities: key types, their libp2p encodings and signature schemes.

See ``peer-ids/peer-ids.md`` of libp2p/specs.  ``PublicKey.to_protobuf()`` is the
canonical encoding from which :class:`p2pkit.peer.PeerId` is derived.
"""

from __future__ import annotations

from p2pkit.crypto.ecdsa import EcdsaPrivateKey, EcdsaPublicKey
from p2pkit.crypto.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from p2pkit.crypto.encoding import (
    generate_private_key,
    load_private_key,
    parse_key_type,
    private_key_from_cryptography,
    private_key_from_protobuf,
    public_key_from_cryptography,
    public_key_from_protobuf,
    read_private_key,
    write_private_key,
)
from p2pkit.crypto.keys import KeyType, PrivateKey, PublicKey
from p2pkit.crypto.rsa import RsaPrivateKey, RsaPublicKey
from p2pkit.crypto.secp256k1 import Secp256k1PrivateKey, Secp256k1PublicKey

__all__ = [
    "EcdsaPrivateKey",
    "EcdsaPublicKey",
    "Ed25519PrivateKey",
    "Ed25519PublicKey",
    "KeyType",
    "PrivateKey",
    "PublicKey",
    "RsaPrivateKey",
    "RsaPublicKey",
    "Secp256k1PrivateKey",
    "Secp256k1PublicKey",
    "generate_private_key",
    "load_private_key",
    "parse_key_type",
    "private_key_from_cryptography",
    "private_key_from_protobuf",
    "public_key_from_cryptography",
    "public_key_from_protobuf",
    "read_private_key",
    "write_private_key",
]
