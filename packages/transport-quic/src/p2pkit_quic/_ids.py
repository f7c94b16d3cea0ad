"""The wire names of the QUIC transport, defined once (import-free on purpose)."""

ALPN = "libp2p"
"""The TLS ALPN protocol every libp2p QUIC handshake offers (libp2p/specs quic)."""
SECURITY_PROTOCOL = "/quic-v1"
"""What a QUIC connection reports as its security (and muxer) protocol."""
MUXER_PROTOCOL = "/quic-v1"
