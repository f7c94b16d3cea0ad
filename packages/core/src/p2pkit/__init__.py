"""p2pkit: a libp2p connection stack for Python, built from plugins."""

__version__ = "0.1.0"
