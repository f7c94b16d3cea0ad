"""Inbound admission: the checks a stranger's connection passes before its handshake.

One place for what the swarm asks of every inbound connection before spending a
handshake on it: the host is not stopping, the gater's ``allow_accept``, and a
:class:`~p2pkit.rcmgr.ConnectionScope` from the resource manager (connection and
pending-handshake limits, for the node and the peer's IP prefix).  The swarm runs it
when a transport hands it an accepted socket; a
:class:`~p2pkit.network.MuxedTransport` that handshakes by itself (QUIC) may run it
earlier, through :data:`~p2pkit.network.InboundAdmission`, before it keeps any state
for a new handshake, and hands the scope back with the connection
(:attr:`~p2pkit.network.MuxedTransportConnection.admission`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from p2pkit.addrs import ip_of
from p2pkit.errors import ConnectionClosed
from p2pkit.gater import ConnectionGated
from p2pkit.rcmgr import ConnectionScope, ResourceManager

if TYPE_CHECKING:
    from multiaddr import Multiaddr

    from p2pkit.abc import ConnectionGater, RawConnection
    from p2pkit.logs import RepeatLimiter
    from p2pkit.network import MuxedTransportConnection

log = logging.getLogger("p2pkit.swarm")


class Admission:
    """See the module docstring.  :meth:`admit` is the swarm's
    :data:`~p2pkit.network.InboundAdmission`."""

    def __init__(
        self,
        gater: ConnectionGater,
        rcmgr: ResourceManager,
        repeats: RepeatLimiter,
        closing: Callable[[], bool],
    ) -> None:
        self.gater = gater
        self.rcmgr = rcmgr
        self._repeats = repeats
        self._closing = closing

    def admit(self, local_addr: Multiaddr | None, remote_addr: Multiaddr | None) -> ConnectionScope:
        """The new connection's scope (counted as a pending handshake), or raise the
        refusal: ConnectionClosed, ConnectionGated (logged here) or LimitExceeded
        (counted and logged by the resource manager); both logs are rate-limited."""
        if self._closing():
            raise ConnectionClosed("host is stopping")
        if not self.gater.allow_accept(local_addr, remote_addr):
            refusal = ConnectionGated("accept", None, remote_addr)
            self._repeats.log(log, logging.INFO, "gated-accept", "%s", refusal)
            raise refusal
        return self.rcmgr.open_connection("inbound", ip_of(remote_addr))

    def scope_for(self, conn: RawConnection | MuxedTransportConnection) -> ConnectionScope:
        """The scope of a connection a transport hands over: the ticket its transport
        took at the start of the handshake when it is one of ours and still held,
        else a new admission (which raises the refusal)."""
        ticket = getattr(conn, "admission", None)
        if ticket is not None:
            if (
                isinstance(ticket, ConnectionScope)
                and ticket.manager is self.rcmgr
                and not ticket.done
                and not self._closing()
            ):
                return ticket
            ticket.close()  # released, foreign, or the host is stopping: admit afresh
        return self.admit(conn.local_addr, conn.remote_addr)


__all__ = ["Admission"]
