"""Multiaddr helpers of the connection path: parse, split off ``/p2p/<id>``, expand.

Every address a user hands the host goes through :func:`to_multiaddr` and
:func:`split_peer`, so a malformed one is one typed error (:class:`AddressError`)
whatever its form (string, binary ``bytes``, :class:`Multiaddr`), and the ``/p2p/``
suffix is split off -- and therefore verified by the security handshake -- for every
transport, path-style ones (``/unix/<path>``) included.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from collections.abc import Iterable

from multiaddr import Multiaddr

from p2pkit.errors import AddressError, DialError, InvalidPeerId
from p2pkit.peer import PeerId

_PEER_PROTOCOLS = ("p2p", "ipfs")


def to_multiaddr(value: Multiaddr | str | bytes) -> Multiaddr:
    """Parse ``value`` (text or binary form); AddressError when it is malformed or empty."""
    if not isinstance(value, Multiaddr | str | bytes | bytearray):
        raise AddressError(f"not a multiaddr: {type(value).__name__}")
    try:
        if isinstance(value, Multiaddr):
            addr = value
        else:
            addr = Multiaddr(bytes(value) if isinstance(value, bytearray) else value)
        # The binary form is decoded lazily: walk it now so errors surface here; and
        # render it: a /p2p/ value that is no peer id (another CID, base58 text that is
        # no multihash) parses but fails on every later use (found by fuzz/).
        empty = not list(addr.items())
        text = str(addr)
        canonical = Multiaddr(text).to_bytes() if isinstance(value, bytes | bytearray) else b""
    except Exception as exc:  # py-multiaddr raises several unrelated types
        raise AddressError(f"invalid multiaddr {value!r}: {exc}") from exc
    if empty:
        raise AddressError("empty multiaddr")
    if isinstance(value, bytes | bytearray) and canonical != value:
        # py-multiaddr reads some truncated values without complaint (2 bytes of /ip4
        # render as an address of 4): the bytes must be what their text form encodes.
        raise AddressError(f"invalid multiaddr {bytes(value)!r}: not in canonical form")
    return addr


def transport_parts(addr: Multiaddr) -> list[tuple[str, str | None]]:
    """``addr`` as ``(protocol name, value)`` pairs, a trailing ``/p2p/<id>`` dropped.

    What every transport's address parser starts from (the peer id is the host's to
    check, not the transport's); a value is text, None for a protocol without one.
    Raises AddressError when the multiaddr cannot be decoded.
    """
    try:
        parts = [(proto.name, None if v is None else str(v)) for proto, v in addr.items()]
    except Exception as exc:  # the multiaddr library raises many unrelated types
        raise AddressError(f"malformed multiaddr {addr}: {exc}") from exc
    if parts and parts[-1][0] == "p2p":
        parts = parts[:-1]
    return parts


def _join(parts: list[tuple[str, str | None]]) -> str:
    out = []
    for name, value in parts:
        if not value:
            out.append(f"/{name}")
        elif value.startswith("/"):  # path-style (/unix/<absolute path>)
            out.append(f"/{name}{value}")
        else:
            out.append(f"/{name}/{value}")
    return "".join(out)


def _parse_peer(text: str, addr: object) -> PeerId:
    try:
        return PeerId.from_string(text)
    except (InvalidPeerId, ValueError) as exc:
        raise AddressError(f"invalid peer id in {addr}: {exc}") from exc


def split_peer(addr: Multiaddr) -> tuple[Multiaddr | None, PeerId | None]:
    """Split ``<transport address>/p2p/<id>`` into the transport part and the peer id.

    A path-style last component (``/unix/<path>``) swallows the rest of the address
    when parsed, so its value is searched for the suffix too.  A second ``/p2p/`` is an
    AddressError (relay addresses are not supported yet).
    """
    parts: list[tuple[str, str | None]] = [
        (p.name, None if v is None else str(v)) for p, v in addr.items()
    ]
    peer: PeerId | None = None
    if parts and parts[-1][0] in _PEER_PROTOCOLS:
        peer = _parse_peer(str(parts[-1][1]), addr)
        parts = parts[:-1]
    elif parts and parts[-1][1] is not None:
        name, value = parts[-1]
        assert value is not None
        for proto in _PEER_PROTOCOLS:
            head, sep, tail = value.rpartition(f"/{proto}/")
            if sep and tail and "/" not in tail:
                peer = _parse_peer(tail, addr)
                parts = [*parts[:-1], (name, head)]
                break
    names = [n for n, _ in parts]
    values = [v or "" for _, v in parts]
    if any(n in _PEER_PROTOCOLS for n in names) or any(
        f"/{p}/" in v for p in _PEER_PROTOCOLS for v in values
    ):
        raise AddressError(f"{addr} names more than one peer (relay addresses unsupported)")
    if not parts:
        return None, peer
    try:
        return Multiaddr(_join(parts)), peer
    except Exception as exc:
        raise AddressError(f"invalid transport address in {addr}: {exc}") from exc


LOCAL_IPS_TTL = 30.0
"""Seconds this host's addresses are remembered (they change rarely: DHCP, a new link)."""
_ROUTE_PROBES = {socket.AF_INET: "192.0.2.1", socket.AF_INET6: "2001:db8::1"}
"""Documentation addresses (RFC 5737, RFC 3849): a route to them is the default route."""
_local_ips: dict[socket.AddressFamily, tuple[float, tuple[str, ...]]] = {}
_sources: dict[tuple[socket.AddressFamily, str], tuple[float, str | None]] = {}
_MAX_SOURCES = 1024


def source_ip(family: socket.AddressFamily, remote_ip: str) -> str | None:
    """The address this host sends from to reach ``remote_ip`` (None: no route).

    ``connect()`` on a UDP socket sends nothing and looks nothing up; the kernel only
    picks the route and its source address.  Remembered for :data:`LOCAL_IPS_TTL`
    seconds per remote address (at most 1024 remembered)."""
    now = time.monotonic()
    key = (family, remote_ip)
    hit = _sources.get(key)
    if hit is not None and now - hit[0] < LOCAL_IPS_TTL:
        return hit[1]
    source: str | None = None
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.connect((remote_ip, 9))
            source = str(probe.getsockname()[0]).split("%")[0]
    except OSError:  # no route (no network, or no IPv6)
        pass
    if len(_sources) >= _MAX_SOURCES:
        _sources.clear()
    _sources[key] = (now, source)
    return source


def local_ips(family: socket.AddressFamily) -> tuple[str, ...]:
    """Loopback, then the address this host sends from on its default route, if any.

    No name lookup: this runs on the event loop, for every identify answer of a node
    listening on ``0.0.0.0`` / ``::``, and a lookup of the host name can wait on DNS
    (it did: tens of milliseconds a call, and it found only what ``/etc/hosts`` said).
    The default route's source is :func:`source_ip` toward a documentation address.
    Remembered for :data:`LOCAL_IPS_TTL` seconds.
    """
    now = time.monotonic()
    cached = _local_ips.get(family)
    if cached is not None and now - cached[0] < LOCAL_IPS_TTL:
        return cached[1]
    ips = ["127.0.0.1" if family == socket.AF_INET else "::1"]
    source = source_ip(family, _ROUTE_PROBES[family])
    if source is not None and source not in ips and not ipaddress.ip_address(source).is_unspecified:
        ips.append(source)
    _local_ips[family] = (now, tuple(ips))
    return tuple(ips)


_expanded: dict[bytes, tuple[float, list[Multiaddr]]] = {}
_MAX_EXPANDED = 256


def expand_unspecified(addr: Multiaddr) -> list[Multiaddr]:
    """``0.0.0.0`` / ``::`` listen addresses -> loopback plus this host's address
    (:func:`local_ips`); any other address as it is.

    Remembered per address as long as :func:`local_ips` is (a node's listen addresses
    are expanded for every identify answer; parsing them again cost more than the
    rest of the answer)."""
    key = addr.to_bytes()
    now = time.monotonic()
    hit = _expanded.get(key)
    if hit is not None and now - hit[0] < LOCAL_IPS_TTL:
        return list(hit[1])
    parts = list(addr.items())
    out = [addr]
    if parts and parts[0][0].name in ("ip4", "ip6") and str(parts[0][1]) in ("0.0.0.0", "::"):
        family = parts[0][0].name
        rest = _join([(p.name, v) for p, v in parts[1:]])  # /quic-v1, /ws: no value
        ips = local_ips(socket.AF_INET if family == "ip4" else socket.AF_INET6)
        out = [Multiaddr(f"/{family}/{ip_}{rest}") for ip_ in ips]
    if len(_expanded) >= _MAX_EXPANDED:
        _expanded.clear()
    _expanded[key] = (now, out)
    return list(out)


def ip_of(addr: Multiaddr | None) -> str | None:
    """The IP address of an ``/ip4`` or ``/ip6`` multiaddr (None for other kinds)."""
    if addr is None:
        return None
    try:
        first = next(iter(addr.items()), None)
    except Exception:  # a multiaddr this library cannot walk: no IP scope
        return None
    if first is None or first[0].name not in ("ip4", "ip6"):
        return None
    return str(first[1])


NAME_FAMILIES = {"dns": socket.AF_UNSPEC, "dns4": socket.AF_INET, "dns6": socket.AF_INET6}
"""The multiaddr protocols that carry a DNS name, and the address family each asks for."""


async def resolve_name(
    addr: Multiaddr, host: str, port: int, family: socket.AddressFamily, socktype: int
) -> list[tuple[socket.AddressFamily, str]]:
    """The ``(family, ip)`` pairs a ``/dns|dns4|dns6`` name stands for, in getaddrinfo's
    order, duplicates and non-IP families dropped.

    Shared by every transport that dials names (TCP, WebSocket, QUIC): the lookup runs in
    the loop's executor, never on the loop.  Raises DialError when the name does not
    resolve to an address; ``addr`` is only for the error messages.
    """
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, family=family, type=socktype)
    except OSError as exc:
        raise DialError(f"cannot resolve {addr}", [(addr, exc)]) from exc
    seen: list[tuple[socket.AddressFamily, str]] = []
    for found, _type, _proto, _canon, sockaddr in infos:
        item = (found, str(sockaddr[0]))
        if found in (socket.AF_INET, socket.AF_INET6) and item not in seen:
            seen.append(item)
    if not seen:
        raise DialError(f"{addr}: name resolved to no usable address")
    return seen


def dialable(addrs: Iterable[Multiaddr]) -> list[Multiaddr]:
    """``addrs`` with unspecified ones expanded (:func:`expand_unspecified`), no repeats."""
    out: list[Multiaddr] = []
    for addr in addrs:
        for expanded in expand_unspecified(addr):
            if expanded not in out:
                out.append(expanded)
    return out


__all__ = [
    "dialable",
    "expand_unspecified",
    "ip_of",
    "local_ips",
    "resolve_name",
    "source_ip",
    "split_peer",
    "to_multiaddr",
    "transport_parts",
]
