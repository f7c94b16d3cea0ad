"""The wire id of the Noise plugin: its one definition, imported by every other module of
the package (import-free, so the entry-point module stays light)."""

PROTOCOL_ID = "/noise"
