"""Untyped exceptions the fuzzer finds that are open issues being fixed elsewhere.

Listed here (never silently allowed) so the CI smoke passes meanwhile; every run prints
how many inputs hit each one.  Remove an entry when its fix lands: the smoke then
proves it stays fixed.
"""

from __future__ import annotations

#: (target names, exception "module.QualName", why it is known)
KNOWN: list[tuple[frozenset[str], str, str]] = [
    (
        frozenset(
            {
                "public-key",
                "private-key",
                "peer-id-bytes",
                "noise-payload",
                "identify",
                "peer-record",
                "tls-signed-key",
            }
        ),
        "cryptography.exceptions.UnsupportedAlgorithm",
        # Issue 11, finding 2: a key whose algorithm or curve OID cryptography does not
        # know escapes key decoding (p2pkit/crypto/rsa.py, ecdsa.py) untyped; the fix
        # (every key-decoding failure an InvalidKey) is under way in p2pkit/crypto/.
        "issue 11 finding 2: UnsupportedAlgorithm escapes key decoding",
    ),
    (
        frozenset({"multiaddr"}),
        "multiaddr.exceptions.BinaryParseError",
        # Found by this harness (see fuzz/README.md), fix not yet assigned: to_multiaddr()
        # (p2pkit/host.py) accepts a /p2p/ value the library cannot render back (a CID
        # that is not a libp2p-key, base58 text that is no multihash), and every later use
        # of the address (str(), items(), split_peer) raises the library's BinaryParseError.
        "to_multiaddr accepts a /p2p/ value that is no peer id; split_peer then raises",
    ),
]


def known_finding(target: str, exception: str) -> bool:
    return any(target in names and exception == exc for names, exc, _ in KNOWN)
