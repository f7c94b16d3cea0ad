"""Fuzz harness for every p2pkit decoder and sans-IO machine (see fuzz/README.md)."""
