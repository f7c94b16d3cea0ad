"""p2pkit <-> js-libp2p interop tests.

A package, so its module names never clash with other test folders.
"""
