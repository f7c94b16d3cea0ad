"""TCP-specific behaviour: addresses, socket options, DNS, options, plugin entry."""

from __future__ import annotations

import asyncio
import socket
import time
from importlib.metadata import entry_points

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from multiaddr import Multiaddr

from p2pkit.abc import RawConnection
from p2pkit.errors import AddressError, ConfigError, ConnectionClosed, DialError, TransportError
from p2pkit.plugins.spec import Components
from p2pkit.testing.transport_suite import Collector, dispose, open_pair, read_all, read_n
from p2pkit_tcp import TcpConnection, TcpOptions, TcpTransport, parse
from p2pkit_tcp.plugin import p2pkit_transports

PEER = "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N"


# -- addresses ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "addr",
    [
        "/ip4/1.2.3.4",
        "/ip4/1.2.3.4/udp/5",
        "/ip4/1.2.3.4/tcp/5/ws",
        "/ip4/1.2.3.4/udp/5/quic-v1",
        "/ip6zone/eth0/ip6/fe80::1/tcp/5",
        "/dns4/example.com/udp/5",
        "/tcp/5",
        f"/p2p/{PEER}",
        f"/ip4/1.2.3.4/tcp/5/p2p/{PEER}/p2p-circuit",
    ],
)
async def test_foreign_or_malformed_addrs_are_refused(addr: str) -> None:
    ma = Multiaddr(addr)
    t = TcpTransport()
    assert not t.can_dial(ma)
    assert not t.can_listen(ma)
    with pytest.raises(AddressError):
        parse(ma)
    with pytest.raises(AddressError):
        await t.dial(ma)
    with pytest.raises(AddressError):
        await t.listen(ma, lambda c: None)


@pytest.mark.parametrize(
    ("addr", "host", "port", "family", "dns"),
    [
        ("/ip4/10.0.0.1/tcp/4001", "10.0.0.1", 4001, socket.AF_INET, False),
        ("/ip6/::1/tcp/1", "::1", 1, socket.AF_INET6, False),
        ("/dns/example.com/tcp/443", "example.com", 443, socket.AF_UNSPEC, True),
        ("/dns4/example.com/tcp/443", "example.com", 443, socket.AF_INET, True),
        ("/dns6/example.com/tcp/443", "example.com", 443, socket.AF_INET6, True),
        (f"/ip4/10.0.0.1/tcp/4001/p2p/{PEER}", "10.0.0.1", 4001, socket.AF_INET, False),
    ],
)
def test_parse(addr: str, host: str, port: int, family: int, dns: bool) -> None:
    target = parse(Multiaddr(addr))
    assert (target.host, target.port, target.family, target.needs_resolution) == (
        host,
        port,
        family,
        dns,
    )


async def test_dial_port_zero_is_an_address_error() -> None:
    with pytest.raises(AddressError):
        await TcpTransport().dial(Multiaddr("/ip4/127.0.0.1/tcp/0"))


# -- listening -----------------------------------------------------------------------


async def test_port_zero_resolves_to_the_bound_port() -> None:
    t = TcpTransport()
    listener = await t.listen(Multiaddr("/ip4/127.0.0.1/tcp/0"), lambda c: None)
    try:
        (addr,) = listener.addrs
        target = parse(addr)
        assert target.host == "127.0.0.1" and target.port != 0
    finally:
        await listener.close()


async def test_wildcard_listen_reports_the_wildcard() -> None:
    t = TcpTransport()
    conns: list[RawConnection] = []
    listener = await t.listen(Multiaddr("/ip4/0.0.0.0/tcp/0"), conns.append)
    try:
        (addr,) = listener.addrs
        assert str(addr).startswith("/ip4/0.0.0.0/tcp/")
        port = parse(addr).port
        conn = await t.dial(Multiaddr(f"/ip4/127.0.0.1/tcp/{port}"), timeout=5)
        await dispose(conn, *conns)
    finally:
        await t.close()  # closes the listener too


async def test_listen_on_a_busy_port_is_a_transport_error() -> None:
    t = TcpTransport()
    listener = await t.listen(Multiaddr("/ip4/127.0.0.1/tcp/0"), lambda c: None)
    try:
        with pytest.raises(TransportError, match="cannot listen"):
            await t.listen(listener.addrs[0], lambda c: None)
    finally:
        await listener.close()


async def test_p2p_suffix_is_ignored() -> None:
    t = TcpTransport()
    conns: list[RawConnection] = []
    listener = await t.listen(Multiaddr(f"/ip4/127.0.0.1/tcp/0/p2p/{PEER}"), conns.append)
    try:
        addr = Multiaddr(f"{listener.addrs[0]}/p2p/{PEER}")
        assert t.can_dial(addr)
        conn = await t.dial(addr, timeout=5)
        assert conn.remote_addr == listener.addrs[0]
        await dispose(conn, *conns)
    finally:
        await listener.close()


# -- dialing -------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["dns4", "dns"])
async def test_dial_dns_localhost(kind: str) -> None:
    t = TcpTransport()
    conns: list[RawConnection] = []
    listener = await t.listen(Multiaddr("/ip4/127.0.0.1/tcp/0"), conns.append)
    try:
        port = parse(listener.addrs[0]).port
        conn = await t.dial(Multiaddr(f"/{kind}/localhost/tcp/{port}"), timeout=5)
        assert str(conn.remote_addr) == f"/ip4/127.0.0.1/tcp/{port}"
        await conn.write(b"hi")
        await asyncio.sleep(0.01)
        assert await read_n(conns[0], 2) == b"hi"
        await dispose(conn, *conns)
    finally:
        await listener.close()


async def test_listen_on_dns4_binds_the_resolved_address() -> None:
    t = TcpTransport()
    conns: list[RawConnection] = []
    listener = await t.listen(Multiaddr("/dns4/localhost/tcp/0"), conns.append)
    try:
        (addr,) = listener.addrs
        assert str(addr).startswith("/ip4/127.0.0.1/tcp/") and parse(addr).port != 0
        conn = await t.dial(addr, timeout=5)
        await dispose(conn, *conns)
    finally:
        await listener.close()


def _localhost_has_ipv6() -> bool:
    try:
        return bool(socket.getaddrinfo("localhost", 1, socket.AF_INET6, socket.SOCK_STREAM))
    except OSError:
        return False


@pytest.mark.skipif(not _localhost_has_ipv6(), reason="'localhost' has no IPv6 address here")
async def test_dial_dns6_localhost() -> None:
    t = TcpTransport()
    conns: list[RawConnection] = []
    listener = await t.listen(Multiaddr("/ip6/::1/tcp/0"), conns.append)
    try:
        port = parse(listener.addrs[0]).port
        conn = await t.dial(Multiaddr(f"/dns6/localhost/tcp/{port}"), timeout=5)
        assert str(conn.remote_addr) == f"/ip6/::1/tcp/{port}"
        await dispose(conn, *conns)
    finally:
        await listener.close()


async def test_dial_unresolvable_name() -> None:
    with pytest.raises(DialError, match="cannot resolve"):
        await TcpTransport().dial(Multiaddr("/dns4/no-such-host.invalid/tcp/1"), timeout=5)


async def test_refused_dial_names_address_and_cause() -> None:
    t = TcpTransport()
    listener = await t.listen(Multiaddr("/ip4/127.0.0.1/tcp/0"), lambda c: None)
    addr = listener.addrs[0]
    await listener.close()
    with pytest.raises(DialError) as info:
        await t.dial(addr, timeout=5)
    assert str(addr) in str(info.value)
    assert any(isinstance(e, ConnectionRefusedError) for _, e in info.value.errors)


async def test_dial_timeout_names_address(blackhole_v4: Multiaddr) -> None:
    t = TcpTransport(TcpOptions(dial_timeout=0.2))  # the option is the default timeout
    start = time.monotonic()
    with pytest.raises(DialError, match="timed out") as info:
        await t.dial(blackhole_v4)
    assert time.monotonic() - start < 1.5
    assert str(blackhole_v4) in str(info.value)


async def test_a_dead_address_does_not_use_up_the_whole_timeout(blackhole_v4: Multiaddr) -> None:
    # What a /dns name resolving to a black-holed address before a live one goes through.
    t = TcpTransport()
    conns: list[RawConnection] = []
    listener = await t.listen(Multiaddr("/ip4/127.0.0.1/tcp/0"), conns.append)
    try:
        dead, live = parse(blackhole_v4), parse(listener.addrs[0])
        loop = asyncio.get_running_loop()
        start = loop.time()
        conn = await t.connect_any(
            listener.addrs[0],
            [(socket.AF_INET, dead.host, dead.port), (socket.AF_INET, live.host, live.port)],
            deadline=start + 1.0,
        )
        elapsed = loop.time() - start
        assert 0.4 < elapsed < 0.9  # the dead one got half of the second
        assert conn.remote_addr == listener.addrs[0]
        await dispose(conn, *conns)
        with pytest.raises(DialError) as info:
            await t.connect_any(
                blackhole_v4,
                [(socket.AF_INET, dead.host, dead.port)] * 2,
                deadline=loop.time() + 0.4,
            )
        assert "timed out" in str(info.value)
        assert len(info.value.errors) == 2
    finally:
        await listener.close()


# -- socket options and connection behaviour -----------------------------------------


async def test_tcp_nodelay_on_both_ends() -> None:
    a, b = await open_pair(TcpTransport(), Multiaddr("/ip4/127.0.0.1/tcp/0"))
    try:
        assert isinstance(a, TcpConnection) and isinstance(b, TcpConnection)
        for c in (a, b):
            assert c.get_socket_option(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        await dispose(a, b)


async def test_nodelay_can_be_turned_off() -> None:
    a, b = await open_pair(
        TcpTransport(TcpOptions(nodelay=False)), Multiaddr("/ip4/127.0.0.1/tcp/0")
    )
    try:
        assert isinstance(a, TcpConnection)
        assert a.get_socket_option(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 0
    finally:
        await dispose(a, b)


async def test_unread_then_push_delivers_unread_bytes_first() -> None:
    a, b = await open_pair(TcpTransport(), Multiaddr("/ip4/127.0.0.1/tcp/0"))
    try:
        await a.write(b"/multistream/1.0.0\nrest")
        got = await read_n(b, 23)
        b.unread(got[19:])
        col = Collector()
        b.start_push(col)
        assert bytes(col.data) == b"rest"  # inside start_push
        await a.write(b"+more")
        await col.wait_for(lambda c: len(c.data) == 9, "pushed bytes")
        assert bytes(col.data) == b"rest+more"
    finally:
        await dispose(a, b)


async def test_push_mode_hands_out_memoryviews_of_one_buffer() -> None:
    a, b = await open_pair(TcpTransport(), Multiaddr("/ip4/127.0.0.1/tcp/0"))
    seen: list[tuple[type, int]] = []

    class Recv(Collector):
        def data_received(self, data: memoryview) -> None:
            seen.append((type(data), id(data.obj)))
            super().data_received(data)

    try:
        col = Recv()
        b.start_push(col)
        for _ in range(3):
            await a.write(b"x" * 1000)
            await col.wait_for(lambda c: len(c.data) % 1000 == 0 and bool(c.data), "chunk")
        assert all(t is memoryview for t, _ in seen)
        assert len({obj for _, obj in seen}) == 1  # the same preallocated buffer
    finally:
        await dispose(a, b)


async def test_write_of_mutable_buffer_under_backpressure_is_safe() -> None:
    # On Python 3.12+ asyncio keeps a reference to what it could not send; write()
    # must still let the caller reuse its buffer once it returns.
    a, b = await open_pair(
        TcpTransport(TcpOptions(write_high_water=64 << 10, pull_buffer_limit=64 << 10)),
        Multiaddr("/ip4/127.0.0.1/tcp/0"),
    )
    try:
        size = 16 << 20
        buf = bytearray(b"A" * size)
        writer = asyncio.ensure_future(a.write(buf))
        await asyncio.sleep(0.05)
        reader = asyncio.ensure_future(read_n(b, 2 * size))
        await writer
        buf[:] = b"B" * size  # reuse the buffer as soon as write() returned
        await a.write(buf)
        got = await reader
        assert got[:size] == b"A" * size and got[size:] == b"B" * size
    finally:
        await dispose(a, b)


async def test_close_gives_up_after_close_timeout() -> None:
    opts = TcpOptions(close_timeout=0.2, write_high_water=64 << 10, pull_buffer_limit=64 << 10)
    a, b = await open_pair(TcpTransport(opts), Multiaddr("/ip4/127.0.0.1/tcp/0"))
    try:
        a.write_nowait(bytes(64 << 20))  # far more than the kernel buffers hold
        start = time.monotonic()
        await a.close()  # the peer never reads: close must not hang
        assert time.monotonic() - start < 2.0
        assert a.closed
        with pytest.raises(ConnectionClosed):
            await read_all(b)  # the abort reached the peer as a reset
    finally:
        await dispose(a, b)


async def test_close_while_peer_keeps_sending_loses_nothing() -> None:
    # Closing a socket with unread received bytes makes the kernel send an RST and drop
    # our unacknowledged data; close() must keep draining until our data is acked.
    for _ in range(3):
        a, b = await open_pair(TcpTransport(), Multiaddr("/ip4/127.0.0.1/tcp/0"))
        a.start_push(Collector())  # a consumes what b sends, as a muxer would
        stop = asyncio.Event()

        async def chatter(peer: RawConnection = b, stop: asyncio.Event = stop) -> None:
            while not stop.is_set() and not peer.closed:
                peer.write_nowait(b"w" * 64)
                await asyncio.sleep(0)

        chat = asyncio.ensure_future(chatter())
        reader = asyncio.ensure_future(read_all(b))
        await asyncio.sleep(0.01)
        data = bytes(8 << 20)
        a.write_nowait(data)
        async with asyncio.timeout(10):
            await a.close()
        try:
            got = await reader
            assert len(got) == len(data)
        finally:
            stop.set()
            await chat
            await dispose(a, b)


async def test_bytes_received_before_a_reset_stay_readable() -> None:
    a, b = await open_pair(TcpTransport(), Multiaddr("/ip4/127.0.0.1/tcp/0"))
    try:
        await b.write(b"last words")
        await asyncio.sleep(0.02)  # they reach a's buffer before the RST
        b.reset()
        assert await read_n(a, 10) == b"last words"
        with pytest.raises(ConnectionClosed) as info:
            async with asyncio.timeout(5):
                await a.read()
        assert isinstance(info.value.__cause__, ConnectionResetError)
        with pytest.raises(ConnectionClosed):
            await a.read()  # and it stays an error
    finally:
        await dispose(a, b)


# -- options and plugin --------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"dial_timeout": 0},
        {"close_timeout": -1},
        {"backlog": 0},
        {"write_high_water": 0},
        {"read_buffer_size": 10},
        {"pull_buffer_limit": 0},
        {"close_linger": -0.1},
    ],
)
def test_bad_options_are_config_errors(kwargs: dict[str, float]) -> None:
    with pytest.raises(ConfigError):
        TcpOptions(**kwargs)  # type: ignore[arg-type]


def test_plugin_entry_point_and_spec() -> None:
    (ep,) = [e for e in entry_points(group="p2pkit") if e.name == "tcp"]
    assert ep.value == "p2pkit_tcp.plugin"
    (spec,) = p2pkit_transports()
    assert (spec.kind, spec.name, spec.options) == ("transport", "tcp", TcpOptions)
    opts = TcpOptions(dial_timeout=3.0)
    transport = spec.factory(Components(private_key=None, peer_id=None), opts)  # type: ignore[arg-type]
    assert isinstance(transport, TcpTransport)
    assert transport.options is opts and transport.name == "tcp"


_COMPONENTS = [
    "/ip4/127.0.0.1",
    "/ip6/::1",
    "/dns/example.com",
    "/dns4/example.com",
    "/dns6/example.com",
    "/tcp/4001",
    "/tcp/0",
    "/udp/4001",
    "/quic-v1",
    "/ws",
    f"/p2p/{PEER}",
    "/p2p-circuit",
]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(_COMPONENTS), min_size=1, max_size=5))
def test_parse_never_raises_anything_but_address_error(parts: list[str]) -> None:
    try:
        ma = Multiaddr("".join(parts))
    except Exception:
        return  # not even a multiaddr: not our concern
    try:
        target = parse(ma)
    except AddressError:
        assert not TcpTransport().can_dial(ma)
        return
    # Accepted: exactly host + tcp (+ /p2p).
    kinds = [p.split("/")[1] for p in parts]
    assert kinds[0] in {"ip4", "ip6", "dns", "dns4", "dns6"} and kinds[1] == "tcp"
    assert kinds[2:] in ([], ["p2p"])
    assert target.port in (0, 4001)
