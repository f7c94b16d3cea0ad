"""p2pkit_noise."""
