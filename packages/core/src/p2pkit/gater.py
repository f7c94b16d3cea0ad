"""The connection gater: go-libp2p's five checkpoints, and the built-in allow/deny lists.

The host consults :class:`~p2pkit.abc.ConnectionGater` at each checkpoint, as early as
the information exists, so a refused connection costs as little as possible:

==================  =====================================  ===========================
checkpoint          when                                   what is known
==================  =====================================  ===========================
``dial_peer``       before dialing a peer id               peer id
``dial_addr``       before dialing each address            peer id (if any), address
``accept``          inbound socket accepted, no handshake  local and remote address
``secured``         security handshake done (both ways)    direction, peer id, address
``upgraded``        muxer started, before the host uses it the connection
==================  =====================================  ===========================

A refusal raises :class:`ConnectionGated` (a :class:`~p2pkit.errors.GatedError`) naming
the checkpoint, and is logged; the socket is reset.  Nothing else is affected.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from p2pkit.abc import ConnectionGater, HostConnection, RawConnection, SecureConnection
from p2pkit.abc import SecurityProtocol as _SecurityProtocol
from p2pkit.errors import ConfigError, GatedError
from p2pkit.logs import RepeatLimiter
from p2pkit.peer import PeerId

if TYPE_CHECKING:
    from multiaddr import Multiaddr

log = logging.getLogger(__name__)

Checkpoint = Literal["dial_peer", "dial_addr", "accept", "secured", "upgraded"]
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class ConnectionGated(GatedError):
    """The gater refused at ``checkpoint`` (``peer`` / ``addr`` when known)."""

    def __init__(
        self, checkpoint: Checkpoint, peer: PeerId | None = None, addr: Multiaddr | None = None
    ) -> None:
        self.checkpoint = checkpoint
        self.peer = peer
        self.addr = addr
        what = ", ".join(str(x) for x in (peer, addr) if x is not None) or "connection"
        super().__init__(f"connection gater refused {what} at checkpoint {checkpoint!r}")


@dataclasses.dataclass
class GaterOptions:
    """The ``[p2pkit.gater]`` table: allow/deny lists of peer ids and IP networks.

    Deny wins over allow.  An empty allow list allows everyone not denied; a non-empty
    one allows only its members (for addresses: only addresses inside its networks).
    Addresses without an IP (e.g. DNS, memory) pass the network lists.
    """

    allow_peers: list[str] = dataclasses.field(default_factory=list)
    deny_peers: list[str] = dataclasses.field(default_factory=list)
    allow_cidrs: list[str] = dataclasses.field(default_factory=list)
    deny_cidrs: list[str] = dataclasses.field(default_factory=list)


def ip_of(addr: Multiaddr | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The IP of ``/ip4/..`` or ``/ip6/..`` multiaddrs, else None."""
    if addr is None:
        return None
    for proto, value in addr.items():
        if proto.name in ("ip4", "ip6"):
            try:
                return ipaddress.ip_address(str(value).split("%")[0])
            except ValueError:
                return None
        break
    return None


class AllowDenyGater(ConnectionGater):
    """The built-in gater: static lists from config, changeable at run time."""

    def __init__(
        self,
        *,
        allow_peers: Sequence[PeerId] = (),
        deny_peers: Sequence[PeerId] = (),
        allow_networks: Sequence[IPNetwork] = (),
        deny_networks: Sequence[IPNetwork] = (),
    ) -> None:
        self.allow_peers: set[PeerId] = set(allow_peers)
        self.deny_peers: set[PeerId] = set(deny_peers)
        self.allow_networks: list[IPNetwork] = list(allow_networks)
        self.deny_networks: list[IPNetwork] = list(deny_networks)

    @classmethod
    def from_options(cls, options: GaterOptions) -> AllowDenyGater:
        def peers(values: list[str], what: str) -> list[PeerId]:
            out = []
            for v in values:
                try:
                    out.append(PeerId.from_string(v))
                except Exception as exc:
                    raise ConfigError(f"gater {what}: invalid peer id {v!r}: {exc}") from exc
            return out

        def nets(values: list[str], what: str) -> list[IPNetwork]:
            out = []
            for v in values:
                try:
                    out.append(ipaddress.ip_network(v, strict=False))
                except ValueError as exc:
                    raise ConfigError(f"gater {what}: invalid network {v!r}: {exc}") from exc
            return out

        return cls(
            allow_peers=peers(options.allow_peers, "allow_peers"),
            deny_peers=peers(options.deny_peers, "deny_peers"),
            allow_networks=nets(options.allow_cidrs, "allow_cidrs"),
            deny_networks=nets(options.deny_cidrs, "deny_cidrs"),
        )

    # -- run-time changes ------------------------------------------------------------------

    def block_peer(self, peer: PeerId) -> None:
        self.deny_peers.add(peer)

    def unblock_peer(self, peer: PeerId) -> None:
        self.deny_peers.discard(peer)

    def block_network(self, network: str | IPNetwork) -> None:
        net = ipaddress.ip_network(network, strict=False) if isinstance(network, str) else network
        self.deny_networks.append(net)

    # -- decisions ----------------------------------------------------------------------------

    def peer_allowed(self, peer: PeerId) -> bool:
        if peer in self.deny_peers:
            return False
        return not self.allow_peers or peer in self.allow_peers

    def addr_allowed(self, addr: Multiaddr | None) -> bool:
        ip = ip_of(addr)
        if ip is None:
            return True
        if any(ip in net for net in self.deny_networks):
            return False
        return not self.allow_networks or any(ip in net for net in self.allow_networks)

    def allow_dial_peer(self, peer: PeerId) -> bool:
        return self.peer_allowed(peer)

    def allow_dial_addr(self, peer: PeerId | None, addr: Multiaddr) -> bool:
        return self.addr_allowed(addr)

    def allow_accept(self, local_addr: Multiaddr | None, remote_addr: Multiaddr | None) -> bool:
        return self.addr_allowed(remote_addr)

    def allow_secured(self, direction: str, peer: PeerId, remote_addr: Multiaddr | None) -> bool:
        return self.peer_allowed(peer)

    def allow_upgraded(self, conn: HostConnection) -> bool:
        return self.peer_allowed(conn.peer)


def build_gater(value: Any) -> ConnectionGater | None:
    """Config value -> gater: None, a ConnectionGater instance or a GaterOptions table
    (the built-in allow/deny gater).  A gater plugin (``{"name": ...}``) is built by
    :mod:`p2pkit.config`, which knows the registry."""
    if value is None or isinstance(value, ConnectionGater):
        return value
    if isinstance(value, GaterOptions):
        return AllowDenyGater.from_options(value)
    if isinstance(value, dict):
        fields = {f.name for f in dataclasses.fields(GaterOptions)}
        unknown = sorted(set(value) - fields)
        if unknown:
            raise ConfigError(
                f"unknown gater option(s) {', '.join(unknown)}; valid: {', '.join(sorted(fields))}"
            )
        for key, item in value.items():
            if not isinstance(item, list | tuple) or not all(isinstance(v, str) for v in item):
                raise ConfigError(f"gater {key} must be a list of strings")
        return AllowDenyGater.from_options(GaterOptions(**{k: list(v) for k, v in value.items()}))
    raise ConfigError("gater must be a table of allow/deny lists or a ConnectionGater")


class GatedSecurity(_SecurityProtocol):
    """Wraps a security protocol to run the ``secured`` checkpoint right after its
    handshake (the upgrader need not know about gating)."""

    def __init__(self, inner: _SecurityProtocol, gater: ConnectionGater) -> None:
        # Lines a peer can trigger again and again are collapsed (p2pkit.logs).
        self._repeats = RepeatLimiter()
        self.inner = inner
        self.gater = gater
        self.protocol_id = inner.protocol_id

    async def secure_outbound(
        self, conn: RawConnection, remote_peer: PeerId | None, muxers: Sequence[str] = ()
    ) -> SecureConnection:
        secure = await self.inner.secure_outbound(conn, remote_peer, muxers)
        self._check(secure, "outbound", conn)
        return secure

    async def secure_inbound(
        self, conn: RawConnection, muxers: Sequence[str] = ()
    ) -> SecureConnection:
        secure = await self.inner.secure_inbound(conn, muxers)
        self._check(secure, "inbound", conn)
        return secure

    def _check(self, secure: SecureConnection, direction: str, raw: RawConnection) -> None:
        if not self.gater.allow_secured(direction, secure.remote_peer, raw.remote_addr):
            secure.reset()
            exc = ConnectionGated("secured", secure.remote_peer, raw.remote_addr)
            self._repeats.log(log, logging.INFO, "gated-secured", "%s", exc)
            raise exc


__all__ = [
    "AllowDenyGater",
    "ConnectionGated",
    "GatedSecurity",
    "GaterOptions",
    "build_gater",
    "ip_of",
]
