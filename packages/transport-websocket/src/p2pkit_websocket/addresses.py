"""WebSocket multiaddrs: ``<tcp address>/ws`` and ``<tcp address>/tls[/sni/<name>]/ws``.

The TCP part is the TCP transport's (``/ip4|ip6|dns|dns4|dns6/<host>/tcp/<port>``,
decoded by :func:`p2pkit.tcp_addrs.parse`).  The legacy ``/wss`` is accepted as
input and means ``/tls/ws`` (:func:`normalise`).  An optional trailing ``/p2p/<id>`` is
ignored here (the host checks it).  Anything else is not ours: :func:`parse` raises
:class:`~p2pkit.errors.AddressError` and ``can_dial``/``can_listen`` say False.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from multiaddr import Multiaddr

from p2pkit.addrs import transport_parts
from p2pkit.errors import AddressError
from p2pkit.tcp_addrs import TcpTarget
from p2pkit.tcp_addrs import from_sockaddr as tcp_from_sockaddr
from p2pkit.tcp_addrs import parse as parse_tcp


@dataclasses.dataclass(frozen=True)
class WsTarget:
    """What a WebSocket multiaddr means: a TCP endpoint, TLS or not, the TLS name."""

    tcp: TcpTarget
    tls: bool
    sni: str | None
    """The TLS server name: ``/sni/<name>``, else the ``/dns*`` name, else None."""

    @property
    def host_header(self) -> str:
        """``Host`` of the HTTP upgrade request (``[v6]:port`` for IPv6 literals)."""
        host = self.sni or self.tcp.host
        if ":" in host:
            host = f"[{host}]"
        return f"{host}:{self.tcp.port}"


def parse(addr: Multiaddr) -> WsTarget:
    """Decode a WebSocket multiaddr; AddressError for anything this transport cannot use."""
    parts = transport_parts(addr)
    if len(parts) < 3 or parts[1][0] != "tcp":
        raise AddressError(f"not a WebSocket multiaddr: {addr}")
    rest = [name for name, _ in parts[2:]]
    sni: str | None = None
    if rest == ["ws"]:
        tls = False
    elif rest in (["wss"], ["tls", "ws"]):
        tls = True
    elif rest == ["tls", "sni", "ws"]:
        tls, sni = True, parts[3][1]
    else:
        raise AddressError(f"not a WebSocket multiaddr: {addr}")
    tcp = parse_tcp(Multiaddr(f"/{parts[0][0]}/{parts[0][1]}/tcp/{parts[1][1]}"))
    if tls and sni is None and tcp.needs_resolution:
        sni = tcp.host
    return WsTarget(tcp=tcp, tls=tls, sni=sni)


def is_ws(addr: Multiaddr) -> bool:
    try:
        parse(addr)
    except AddressError:
        return False
    return True


def normalise(addr: Multiaddr) -> Multiaddr:
    """``.../wss`` -> ``.../tls/ws`` (the form libp2p uses today); others unchanged."""
    text = str(addr)
    head, sep, tail = text.partition("/wss")
    if sep and (not tail or tail.startswith("/")):
        return Multiaddr(f"{head}/tls/ws{tail}")
    return addr


def from_sockaddr(sockaddr: Any, *, tls: bool) -> Multiaddr | None:
    """A socket address -> ``/ip4|ip6/<ip>/tcp/<port>/ws`` (``/tls/ws`` with TLS)."""
    base = tcp_from_sockaddr(sockaddr)
    if base is None:
        return None
    return Multiaddr(f"{base}/tls/ws" if tls else f"{base}/ws")
