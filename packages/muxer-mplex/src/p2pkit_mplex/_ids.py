"""The wire id of the mplex plugin: its one definition, imported by every other module of
the package (import-free, so the entry-point module stays light)."""

PROTOCOL_ID = "/mplex/6.7.0"
