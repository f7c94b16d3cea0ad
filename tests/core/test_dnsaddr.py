"""``/dnsaddr`` names (multiformats/multiaddr protocols/DNSADDR.md), resolved through a
real DNS server on loopback: nesting, ``/p2p/`` filtering, bounds against a hostile
zone, errors, and hosts connecting by name over TCP and QUIC."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import dns.flags
import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import pytest
from multiaddr import Multiaddr

from p2pkit.builder import HostBuilder
from p2pkit.config import ConfigError
from p2pkit.crypto import generate_private_key
from p2pkit.dnsaddr import MAX_ADDRS, MAX_LOOKUPS, DnsaddrResolver, is_dnsaddr, parse_server
from p2pkit.errors import AddressError, DialError
from p2pkit.peer import PeerId
from p2pkit.protocols.ping import PROTOCOL_ID as PING
from p2pkit.protocols.ping import ping
from tests.hosts import host_starter

P1 = PeerId.from_public_key(generate_private_key().public_key)
P2 = PeerId.from_public_key(generate_private_key().public_key)


class Zone(asyncio.DatagramProtocol):
    """A DNS server answering TXT queries from ``records`` (name -> TXT strings) over
    UDP; NXDOMAIN for other names; counts the queries it got."""

    def __init__(self) -> None:
        self.records: dict[str, list[str]] = {}
        self.queries = 0
        self.silent = False
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport  # asyncio's datagram transport (no common base class)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.queries += 1
        if self.silent:
            return
        query = dns.message.from_wire(data)
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        name = query.question[0].name.to_text().rstrip(".")
        if name not in self.records:
            response.set_rcode(dns.rcode.NXDOMAIN)
        else:
            texts = [f'"{text}"' for text in self.records[name]]
            if texts:
                response.answer.append(
                    dns.rrset.from_text_list(
                        query.question[0].name, 60, dns.rdataclass.IN, dns.rdatatype.TXT, texts
                    )
                )
        assert self.transport is not None
        self.transport.sendto(response.to_wire(), addr)

    def publish(self, domain: str, *addrs: str) -> None:
        self.records[f"_dnsaddr.{domain}"] = [f"dnsaddr={a}" for a in addrs]


@pytest.fixture
async def zone() -> AsyncIterator[tuple[Zone, str]]:
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(Zone, local_addr=("127.0.0.1", 0))
    port = transport.get_extra_info("sockname")[1]
    yield protocol, f"127.0.0.1:{port}"
    transport.close()


def test_is_dnsaddr_and_server_forms():
    assert is_dnsaddr(Multiaddr("/dnsaddr/example.com"))
    assert is_dnsaddr(Multiaddr(f"/dnsaddr/example.com/p2p/{P1}"))
    assert not is_dnsaddr(Multiaddr("/dns4/example.com/tcp/1"))
    assert parse_server("1.2.3.4") == ("1.2.3.4", 53)
    assert parse_server("1.2.3.4:5353") == ("1.2.3.4", 5353)
    assert parse_server("::1") == ("::1", 53)
    assert parse_server("[::1]:5353") == ("::1", 5353)
    for bad in ("dns.google", "1.2.3.4:0", "1.2.3.4:x"):
        with pytest.raises(ValueError):
            parse_server(bad)
    with pytest.raises(ConfigError):
        HostBuilder().dialer(dns_servers=["dns.google"]).config()


async def test_records_nested_filtered_and_bad_ones_skipped(zone):
    server, where = zone
    server.publish(
        "a.test",
        f"/ip4/192.0.2.1/tcp/1/p2p/{P1}",
        f"/ip4/192.0.2.1/udp/1/quic-v1/p2p/{P1}",
        f"/dnsaddr/b.test/p2p/{P2}",
        "not a multiaddr",
    )
    server.records["_dnsaddr.a.test"].append("other=/ip4/192.0.2.9/tcp/9")  # not dnsaddr=
    server.publish("b.test", f"/ip6/2001:db8::1/tcp/2/p2p/{P2}", f"/ip4/192.0.2.3/tcp/3/p2p/{P1}")
    resolver = DnsaddrResolver([where], timeout=2)
    everything = await resolver.resolve(Multiaddr("/dnsaddr/a.test"))
    mine = {f"/ip4/192.0.2.1/tcp/1/p2p/{P1}", f"/ip4/192.0.2.1/udp/1/quic-v1/p2p/{P1}"}
    # b.test's P1 record is filtered out by the /p2p/P2 of the record naming b.test.
    # (A TXT set has no order: DNS may return the records in any.)
    assert {str(a) for a in everything} == mine | {f"/ip6/2001:db8::1/tcp/2/p2p/{P2}"}
    assert len(everything) == 3
    only_p1 = await resolver.resolve(Multiaddr(f"/dnsaddr/a.test/p2p/{P1}"))
    assert {str(a) for a in only_p1} == mine and len(only_p1) == 2
    with pytest.raises(AddressError):
        await resolver.resolve(Multiaddr("/dns4/a.test/tcp/1"))


async def test_a_name_without_records_is_a_dial_error(zone):
    server, where = zone
    server.records["_dnsaddr.empty.test"] = ["v=spf1 -all"]
    resolver = DnsaddrResolver([where], timeout=2)
    with pytest.raises(DialError, match="no address"):
        await resolver.resolve(Multiaddr("/dnsaddr/empty.test"))
    with pytest.raises(DialError, match="cannot resolve"):
        await resolver.resolve(Multiaddr("/dnsaddr/nowhere.test"))  # NXDOMAIN


async def test_a_silent_server_fails_within_the_timeout(zone):
    server, where = zone
    server.silent = True
    loop = asyncio.get_running_loop()
    start = loop.time()
    with pytest.raises(DialError, match=r"cannot resolve|timed out"):
        await DnsaddrResolver([where], timeout=0.5).resolve(Multiaddr("/dnsaddr/a.test"))
    assert loop.time() - start < 3


async def test_a_hostile_zone_costs_bounded_lookups_and_addresses(zone):
    server, where = zone
    resolver = DnsaddrResolver([where], timeout=2)
    # A name that points at itself, and one that fans out to many names.
    server.publish("loop.test", "/dnsaddr/loop.test", "/ip4/192.0.2.1/tcp/1")
    assert len(await resolver.resolve(Multiaddr("/dnsaddr/loop.test"))) == 1
    assert server.queries <= MAX_LOOKUPS
    server.queries = 0
    server.publish("fan.test", *[f"/dnsaddr/n{i}.test" for i in range(200)])
    for i in range(200):
        server.publish(f"n{i}.test", *[f"/ip4/192.0.2.{j}/tcp/{i + 1}" for j in range(1, 50)])
    found = await resolver.resolve(Multiaddr("/dnsaddr/fan.test"))
    assert server.queries <= MAX_LOOKUPS and len(found) <= MAX_ADDRS
    server.publish("big.test", *[f"/ip4/192.0.2.1/tcp/{port}" for port in range(1, 501)])
    assert len(await resolver.resolve(Multiaddr("/dnsaddr/big.test"))) == MAX_ADDRS


async def test_hosts_connect_by_dnsaddr_over_tcp_and_quic(zone):
    server, where = zone
    async with host_starter() as start:
        target = await start(
            HostBuilder()
            .transport("tcp")
            .transport("quic")
            .listen("/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1")
        )
        tcp, quic = (
            next(a for a in target.listen_addrs if kind in str(a)) for kind in ("/tcp/", "/quic-v1")
        )
        other = PeerId.from_public_key(generate_private_key().public_key)
        server.publish("node.test", f"{tcp}/p2p/{target.peer_id}", f"{quic}/p2p/{target.peer_id}")
        server.publish("quic.test", f"{quic}/p2p/{target.peer_id}")
        server.publish(
            "two.test", f"{tcp}/p2p/{target.peer_id}", f"/ip4/192.0.2.1/tcp/1/p2p/{other}"
        )
        server.publish("stranger.test", f"{tcp}/p2p/{other}")

        def client_builder() -> HostBuilder:
            return HostBuilder().transport("tcp").transport("quic").dialer(dns_servers=[where])

        client = await start(client_builder())
        conn = await client.connect("/dnsaddr/node.test")  # the records name the peer
        assert conn.peer == target.peer_id
        assert "/quic-v1" in str(conn.remote_addr)  # QUIC ranked first, as for any dial
        assert len(await ping(await client.new_stream(target.peer_id, [PING]), 1)) == 1

        quic_only = await start(client_builder())
        conn = await quic_only.connect(f"/dnsaddr/quic.test/p2p/{target.peer_id}")
        assert str(conn.remote_addr) == str(quic)

        picky = await start(client_builder())
        with pytest.raises(DialError, match="2 peers"):
            await picky.connect("/dnsaddr/two.test")
        conn = await picky.connect(f"/dnsaddr/two.test/p2p/{target.peer_id}")
        assert conn.peer == target.peer_id

        by_id = await start(client_builder())
        by_id.peerstore.add_addrs(target.peer_id, [Multiaddr("/dnsaddr/node.test")], 60)
        assert (await by_id.connect(target.peer_id)).peer == target.peer_id
        queries = server.queries
        for _ in range(3):  # streams to a connected peer look nothing up
            await ping(await by_id.new_stream(target.peer_id, [PING]), 1)
        assert server.queries == queries

        with pytest.raises(DialError):  # the records are all for another peer
            await (await start(client_builder())).connect(
                f"/dnsaddr/stranger.test/p2p/{target.peer_id}"
            )
