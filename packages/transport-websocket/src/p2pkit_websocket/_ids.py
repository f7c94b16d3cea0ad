"""The wire ids of the WebSocket plugin, defined once (import-free, so the entry-point
module stays light): the multiaddr protocols it serves and the HTTP path it upgrades."""

ADDRESS_PROTOCOLS = ("ws", "wss")
"""``provides`` of the plugin spec; ``/tls/ws`` ends in ``ws``, ``/wss`` is its old name."""

PATH = "/"
"""The one request path served and dialled (libp2p peers use ``/``)."""
