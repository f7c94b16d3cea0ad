"""``/dnsaddr`` names: multiaddrs published in DNS TXT records.

multiformats/multiaddr ``protocols/DNSADDR.md``: ``/dnsaddr/<domain>`` stands for the
multiaddrs in the TXT records of ``_dnsaddr.<domain>``, one ``dnsaddr=<multiaddr>`` per
record; a record may itself be a ``/dnsaddr`` (resolved in turn).  With a ``/p2p/<id>``
after the name only the records ending in that same ``/p2p/<id>`` count.  Bootstrap
lists are written this way (``/dnsaddr/bootstrap.libp2p.io/p2p/<id>``), and go-, js- and
rust-libp2p resolve them before dialing, as :meth:`Host.connect` does here.

The zone is not ours, so the work it can cause is bounded: at most :data:`MAX_LOOKUPS`
TXT queries and :data:`MAX_DEPTH` levels of nesting per resolution (a record pointing at
its own name ends there), at most :data:`MAX_ADDRS` addresses kept, records that do not
parse skipped, the whole resolution under the resolver's timeout (what was found by
then is used).  Queries go through dnspython (imported in a thread on the first
``/dnsaddr`` only: its imports take ~0.25 s), to the servers of ``/etc/resolv.conf`` or
those the dialer options name (``[p2pkit.dialer] dns_servers``).
"""

from __future__ import annotations

import asyncio
import importlib
import ipaddress
from collections.abc import Sequence
from typing import Any

from multiaddr import Multiaddr

from p2pkit.addrs import split_peer, to_multiaddr, transport_parts
from p2pkit.errors import AddressError, DialError, P2PError
from p2pkit.peer import PeerId

MAX_DEPTH = 4
"""Nested ``/dnsaddr`` records followed below the first lookup."""
MAX_LOOKUPS = 16
"""TXT queries one resolution may make, nested ones included."""
MAX_ADDRS = 64
"""Addresses one resolution keeps (the rest are dropped, in record order)."""
PREFIX = "dnsaddr="


def is_dnsaddr(addr: Multiaddr) -> bool:
    """Does ``addr`` start with ``/dnsaddr``?"""
    try:
        first = next(iter(addr.items()), None)
    except Exception:  # a multiaddr this library cannot walk is not a name
        return False
    return first is not None and first[0].name == "dnsaddr"


def parse_server(text: str) -> tuple[str, int]:
    """``"1.2.3.4"``, ``"1.2.3.4:5353"``, ``"::1"`` or ``"[::1]:5353"`` -> (ip, port)."""
    host, port = text, 53
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = int(rest[1:]) if rest.startswith(":") else 53
    elif text.count(":") == 1:
        host, _, port_s = text.partition(":")
        port = int(port_s)
    ipaddress.ip_address(host)  # ValueError for a name: a DNS server is given by IP
    if not 0 < port < 65536:
        raise ValueError(f"bad DNS server port in {text!r}")
    return host, port


class DnsaddrResolver:
    """Resolves ``/dnsaddr`` multiaddrs (see the module docstring)."""

    def __init__(self, servers: Sequence[str] = (), timeout: float = 5.0) -> None:
        self.servers = [parse_server(s) for s in servers]
        self.timeout = timeout
        self._resolver: Any = None

    async def _dns(self) -> Any:
        if self._resolver is None:
            # dnspython's imports take ~0.25 s: in a thread, not on the event loop.
            await asyncio.get_running_loop().run_in_executor(None, _load_dnspython)
            import dns.asyncresolver  # deliberately lazy: see the module docstring
            import dns.nameserver

            resolver = dns.asyncresolver.Resolver(configure=not self.servers)
            if self.servers:
                resolver.nameservers = [
                    dns.nameserver.Do53Nameserver(host, port) for host, port in self.servers
                ]
            resolver.lifetime = self.timeout
            self._resolver = resolver
        return self._resolver

    async def resolve(self, addr: Multiaddr) -> list[Multiaddr]:
        """The multiaddrs ``addr`` (``/dnsaddr/<domain>[/p2p/<id>]``) stands for, each
        with its ``/p2p/<id>`` when the record has one.  Raises DialError when the name
        cannot be looked up or yields no address, AddressError when ``addr`` is not a
        ``/dnsaddr`` name."""
        budget = [MAX_LOOKUPS]
        found: list[Multiaddr] = []
        try:
            async with asyncio.timeout(self.timeout):  # the whole resolution, nesting too
                await self._resolve(addr, 0, budget, found)
        except TimeoutError:
            if not found:
                raise DialError(f"resolving {addr} timed out after {self.timeout} s") from None
        if not found:
            raise DialError(f"{addr}: no address in its TXT records")
        return found

    async def _resolve(
        self, addr: Multiaddr, depth: int, budget: list[int], found: list[Multiaddr]
    ) -> None:
        domain, peer = _name_of(addr)
        if budget[0] <= 0:
            return
        budget[0] -= 1
        for record in await self._txt(addr, domain):
            if len(found) >= MAX_ADDRS:
                return
            try:
                resolved = to_multiaddr(record)
                transport, record_peer = split_peer(resolved)
            except AddressError:
                continue  # one bad record does not spoil the others
            if peer is not None and record_peer != peer:
                continue
            if transport is not None and is_dnsaddr(transport):
                if depth < MAX_DEPTH:
                    try:
                        await self._resolve(resolved, depth + 1, budget, found)
                    except P2PError:
                        continue  # a nested name that fails is one record less
            elif resolved not in found:
                found.append(resolved)

    async def _txt(self, addr: Multiaddr, domain: str) -> list[str]:
        import dns.exception  # deliberately lazy: see the module docstring

        try:
            answer = await (await self._dns()).resolve(
                f"_dnsaddr.{domain}", "TXT", search=False, raise_on_no_answer=False
            )
        except dns.exception.DNSException as exc:
            raise DialError(f"cannot resolve {addr}", [(addr, exc)]) from None
        out = []
        for rdata in answer:
            text = b"".join(rdata.strings).decode("utf-8", "replace")
            if text.startswith(PREFIX):
                out.append(text[len(PREFIX) :])
        return out


def _load_dnspython() -> None:
    for module in ("dns.asyncresolver", "dns.nameserver", "dns.exception"):
        importlib.import_module(module)


def _name_of(addr: Multiaddr) -> tuple[str, PeerId | None]:
    transport, peer = split_peer(addr)
    parts = transport_parts(transport) if transport is not None else []
    if len(parts) != 1 or parts[0][0] != "dnsaddr" or not parts[0][1]:
        raise AddressError(f"not a /dnsaddr name: {addr}")
    return str(parts[0][1]).rstrip("."), peer


async def expand(
    resolver: DnsaddrResolver, addrs: Sequence[Multiaddr], peer: PeerId | None
) -> tuple[list[Multiaddr], PeerId | None]:
    """``addrs`` with their ``/dnsaddr`` names resolved, for a dial of ``peer``.

    Records naming another peer than ``peer`` are dropped.  With ``peer`` None the
    records must name one peer (or none): that peer is returned, so that the dial checks
    whom it reached.  The ``/p2p/<id>`` of each address is split off (the dial checks
    the peer).  Raises DialError when nothing is left to dial, with each lookup's error.
    """
    out: list[Multiaddr] = []
    errors: list[tuple[object, BaseException]] = []
    named: set[PeerId] = set()
    for addr in addrs:
        if not is_dnsaddr(addr):
            out.append(addr)
            continue
        try:
            resolved = await resolver.resolve(_with_peer(addr, peer))
        except P2PError as exc:
            errors.append((addr, exc))
            continue
        for item in resolved:
            transport, item_peer = split_peer(item)
            if transport is None or transport in out:
                continue
            if item_peer is not None:
                named.add(item_peer)
            out.append(transport)
    if peer is None and len(named) > 1:
        raise DialError(
            f"{', '.join(map(str, addrs))} name {len(named)} peers: add /p2p/<id> to pick one"
        )
    if not out:
        raise DialError("no address to dial: every /dnsaddr name failed", errors)
    return out, peer if peer is not None else next(iter(named), None)


def _with_peer(addr: Multiaddr, peer: PeerId | None) -> Multiaddr:
    if peer is None or split_peer(addr)[1] is not None:
        return addr
    return Multiaddr(f"{addr}/p2p/{peer}")


__all__ = ["MAX_ADDRS", "MAX_DEPTH", "MAX_LOOKUPS", "DnsaddrResolver", "expand", "is_dnsaddr"]
