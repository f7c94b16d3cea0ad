"""p2pkit_yamux."""
