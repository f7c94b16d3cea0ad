"""Multiaddr <-> socket address conversion for QUIC.

Accepted: ``/ip4|ip6|dns|dns4|dns6/<host>/udp/<port>/quic-v1`` with an optional
trailing ``/p2p/<peer id>`` (the swarm checks the peer id).  A ``/dns*`` name is dialled
(resolved at the dial, as TCP's are) but not listened on: a UDP socket binds to an IP,
and the addresses a listener announces must be the ones it is bound to.  The draft-29
``/quic`` is not spoken (no current libp2p implementation offers only it).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import socket
from typing import Any

from multiaddr import Multiaddr

from p2pkit.addrs import NAME_FAMILIES, source_ip, transport_parts
from p2pkit.errors import AddressError

_FAMILIES = {"ip4": socket.AF_INET, "ip6": socket.AF_INET6, **NAME_FAMILIES}


@dataclasses.dataclass(frozen=True)
class QuicTarget:
    host: str
    port: int
    family: socket.AddressFamily
    needs_resolution: bool = False
    """True for ``/dns*``: ``host`` is a name to resolve (the family may be AF_UNSPEC)."""

    @property
    def is_loopback(self) -> bool:
        return not self.needs_resolution and ipaddress.ip_address(self.host).is_loopback

    @property
    def is_unspecified(self) -> bool:
        return not self.needs_resolution and ipaddress.ip_address(self.host).is_unspecified

    def resolved(self, family: socket.AddressFamily, ip: str) -> QuicTarget:
        """This target at one of the addresses its name resolved to."""
        return QuicTarget(host=ip, port=self.port, family=family)


def parse(addr: Multiaddr) -> QuicTarget:
    """Decode a QUIC multiaddr; raises AddressError for anything else."""
    parts = transport_parts(addr)
    names = [name for name, _ in parts]
    if len(parts) != 3 or names[0] not in _FAMILIES or names[1:] != ["udp", "quic-v1"]:
        raise AddressError(f"not a QUIC multiaddr: {addr}")
    host, port_s = str(parts[0][1] or ""), parts[1][1]
    is_name = names[0] in NAME_FAMILIES
    try:
        port = int(port_s or "")  # a value-less part: ValueError, as a bad one
        if not is_name:
            ipaddress.ip_address(host)
    except (TypeError, ValueError) as exc:
        raise AddressError(f"bad QUIC address {addr}") from exc
    if not 0 <= port <= 65535 or not host:
        raise AddressError(f"bad QUIC address {addr}")
    return QuicTarget(host=host, port=port, family=_FAMILIES[names[0]], needs_resolution=is_name)


def is_quic(addr: Multiaddr) -> bool:
    """A QUIC address this transport can dial (IP or DNS name)."""
    try:
        parse(addr)
    except AddressError:
        return False
    return True


def is_listenable(addr: Multiaddr) -> bool:
    """A QUIC address with an IP (a socket binds to an IP, not to a name)."""
    try:
        return not parse(addr).needs_resolution
    except AddressError:
        return False


# Binary multiaddr codes (varints): ip4 0x04, ip6 0x29, udp 0x0111, quic-v1 0x01cd.
_IP4, _IP6, _UDP, _QUIC_V1 = b"\x04", b"\x29", b"\x91\x02", b"\xcd\x03"


def from_sockaddr(sockaddr: Any) -> Multiaddr | None:
    """``('1.2.3.4', 5)`` / ``('::1', 5, flow, scope)`` -> ``/ip4|ip6/.../udp/5/quic-v1``.

    Built from the binary form: parsing the text form costs ~12 us (the multiaddr
    library), and every connection needs two of these.
    """
    if not isinstance(sockaddr, tuple) or len(sockaddr) < 2:
        return None
    host = str(sockaddr[0]).split("%", 1)[0]
    try:
        ip = ipaddress.ip_address(host)
        port = int(sockaddr[1]).to_bytes(2, "big")
    except (ValueError, OverflowError):
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    kind = _IP4 if ip.version == 4 else _IP6
    return Multiaddr(kind + ip.packed + _UDP + port + _QUIC_V1)


def local_addr_for(sockname: Any, remote: Any) -> Multiaddr | None:
    """A connection's local address: the socket's own, or, for a socket bound to
    ``0.0.0.0`` / ``::`` (dials, wildcard listeners), the address the route to
    ``remote`` leaves from (:func:`p2pkit.addrs.source_ip`, remembered), with the
    socket's port (not the unspecified address, which names no interface)."""
    try:
        bound = ipaddress.ip_address(str(sockname[0]).split("%", 1)[0])
    except (TypeError, ValueError, IndexError):
        return None
    if not bound.is_unspecified:
        return from_sockaddr(sockname)
    family = socket.AF_INET if bound.version == 4 else socket.AF_INET6
    ip = source_ip(family, str(remote[0]))
    return from_sockaddr((ip, sockname[1])) if ip is not None else from_sockaddr(sockname)
