"""p2pkit_mplex."""
