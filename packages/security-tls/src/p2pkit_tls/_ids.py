"""The wire id of the TLS plugin: its one definition, imported by every other module of
the package (import-free, so the entry-point module stays light)."""

PROTOCOL_ID = "/tls/1.0.0"
