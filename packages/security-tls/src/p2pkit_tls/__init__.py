"""p2pkit_tls."""
