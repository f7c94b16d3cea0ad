"""Multiaddr <-> socket address conversion for TCP.

In the core because more than one transport runs over a TCP socket: ``p2pkit-tcp``
and ``p2pkit-websocket`` both use it, and no plugin imports another.

Accepted: ``/ip4|ip6|dns|dns4|dns6/<host>/tcp/<port>`` with an optional trailing
``/p2p/<peer id>`` (the host checks the peer id; the transport ignores it).  Anything
else (``/ip6zone``, ``/ws``, ``/udp``, ...) is not plain TCP: :func:`parse` raises
:class:`~p2pkit.errors.AddressError` and ``can_dial``/``can_listen`` say False.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import socket
from typing import Any

from multiaddr import Multiaddr

from p2pkit.addrs import NAME_FAMILIES, resolve_name, transport_parts
from p2pkit.errors import AddressError

_FAMILIES = {"ip4": socket.AF_INET, "ip6": socket.AF_INET6, **NAME_FAMILIES}


@dataclasses.dataclass(frozen=True)
class TcpTarget:
    """What a TCP multiaddr means for a socket."""

    host: str
    port: int
    family: socket.AddressFamily
    needs_resolution: bool
    """True for ``/dns*``: ``host`` is a name to resolve with getaddrinfo."""


def parse(addr: Multiaddr) -> TcpTarget:
    """Decode a TCP multiaddr; raises AddressError for anything this transport cannot use."""
    parts = transport_parts(addr)
    if len(parts) != 2 or parts[0][0] not in _FAMILIES or parts[1][0] != "tcp":
        raise AddressError(f"not a TCP multiaddr: {addr}")
    (kind, host), (_, port_s) = parts
    try:
        port = int(port_s or "")  # a value-less part: ValueError, as a bad one
    except (TypeError, ValueError) as exc:
        raise AddressError(f"bad TCP port in {addr}") from exc
    if not 0 <= port <= 65535 or not host:
        raise AddressError(f"bad TCP address {addr}")
    return TcpTarget(
        host=str(host),
        port=port,
        family=_FAMILIES[kind],
        needs_resolution=kind.startswith("dns"),
    )


async def resolve(addr: Multiaddr, target: TcpTarget) -> list[tuple[socket.AddressFamily, str]]:
    """The ``(family, ip)`` pairs to dial for ``target``, in getaddrinfo's order.

    An IP target is itself; a ``/dns*`` name is resolved (duplicates and non-IP
    families dropped).  Raises DialError when the name does not resolve to an address;
    ``addr`` is only for the error messages.
    """
    if not target.needs_resolution:
        return [(target.family, target.host)]
    return await resolve_name(addr, target.host, target.port, target.family, socket.SOCK_STREAM)


def is_tcp(addr: Multiaddr) -> bool:
    try:
        parse(addr)
    except AddressError:
        return False
    return True


def from_sockaddr(sockaddr: Any) -> Multiaddr | None:
    """``('1.2.3.4', 5)`` / ``('::1', 5, flow, scope)`` -> ``/ip4|ip6/.../tcp/5``."""
    if not isinstance(sockaddr, tuple) or len(sockaddr) < 2:
        return None
    host = str(sockaddr[0]).split("%", 1)[0]  # a scope id has no place in /ip6
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None
    kind = "ip4" if ip.version == 4 else "ip6"
    return Multiaddr(f"/{kind}/{ip}/tcp/{int(sockaddr[1])}")
