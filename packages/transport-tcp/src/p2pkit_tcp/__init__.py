"""p2pkit_tcp."""
