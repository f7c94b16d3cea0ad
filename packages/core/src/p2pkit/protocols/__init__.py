"""Built-in protocols: ping, identify, echo and perf."""

from __future__ import annotations

from typing import TYPE_CHECKING

from p2pkit.protocols.echo import PROTOCOL_ID as ECHO
from p2pkit.protocols.echo import handle_echo
from p2pkit.protocols.identify import Identify
from p2pkit.protocols.perf import PROTOCOL_ID as PERF
from p2pkit.protocols.perf import handle_perf
from p2pkit.protocols.ping import PROTOCOL_ID as PING
from p2pkit.protocols.ping import ping_handler

if TYPE_CHECKING:
    from p2pkit.host import Host


def install_builtin_protocols(host: Host) -> Identify | None:
    """Register the handlers the host's configuration enables; returns the identify
    service when enabled (the host keeps it as ``host.identify``)."""
    cfg = host.config
    if cfg.enable_ping:
        host.set_stream_handler(PING, ping_handler(host.connection_of))
    if cfg.enable_echo:
        host.set_stream_handler(ECHO, handle_echo)
    if cfg.enable_perf:
        host.set_stream_handler(PERF, handle_perf)
    if cfg.enable_identify:
        identify = Identify(host)
        identify.install()
        return identify
    return None
