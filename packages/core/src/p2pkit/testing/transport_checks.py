"""Checks that catch common transport plugin bugs, as plain functions (``check_*``).

A plugin's own tests can run one directly: write() must wait under backpressure,
``can_dial`` must not claim other transports' addresses (:func:`default_refused_addrs`
lists them), ``close()`` must close listeners, write() must not keep the caller's buffer,
a listener must report resolved addresses, a dial must time out on time and a cancelled
one must leak nothing.  :class:`~p2pkit.testing.transport_suite.TransportSuite` runs them
all; the last two serve the muxed-transport suite as well.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Callable
from typing import Any

import pytest
from multiaddr import Multiaddr

from p2pkit.abc import RawConnection, Transport
from p2pkit.errors import DialError
from p2pkit.network import BaseTransport, MuxedTransport
from p2pkit.testing.transport_helpers import (
    STEP,
    _pattern,
    _record,
    dispose,
    open_pair,
    read_all,
)

__all__ = [
    "check_can_dial_refuses",
    "check_cancel_dial_leaks_nothing",
    "check_close_closes_listeners",
    "check_dial_timeout",
    "check_listener_reports_resolved_addrs",
    "check_write_copies_caller_buffer",
    "check_write_waits_under_backpressure",
    "default_refused_addrs",
]

_FOREIGN_ADDRS = (
    "/ip4/127.0.0.1/tcp/1",
    "/dns4/localhost/tcp/1",
    "/ip4/127.0.0.1/udp/1/quic-v1",
    "/ip4/127.0.0.1/udp/1/quic-v1/webtransport",
    "/ip6/::1/udp/1/webrtc-direct",
    "/ip4/127.0.0.1/tcp/1/ws",
    "/dns4/x/tcp/1/ws",
    "/dns/x/tcp/1/wss",
    "/ip4/127.0.0.1/tcp/1/tls/ws",
    "/ip4/127.0.0.1/tcp/1/p2p/12D3KooWGC6TvWhfapngX6wvJHMYvKpDMXPb3ZnCZ6dMoaMtimQ5/p2p-circuit",
    "/unix/x",
    "/memory/1",
)


def _last_protocol(addr: Multiaddr) -> str:
    names = [p.name for p in addr.protocols() if p.name != "p2p"]
    return names[-1] if names else ""


def default_refused_addrs(listen_addr: Multiaddr) -> list[Multiaddr]:
    """Addresses of other transports: those whose last protocol (``/p2p`` aside)
    differs from ``listen_addr``'s (a TCP transport must refuse ``.../tcp/1/ws`` and
    ``/unix/x``; a Unix socket transport must refuse ``/ip4/.../tcp/1``)."""
    own = _last_protocol(listen_addr)
    out = []
    for text in _FOREIGN_ADDRS:
        addr = Multiaddr(text)
        if _last_protocol(addr) != own:
            out.append(addr)
    return out


def check_can_dial_refuses(transport: BaseTransport, refused: list[Multiaddr]) -> None:
    """``can_dial``/``can_listen`` must not claim another transport's addresses: the
    host picks the first transport that claims an address, so a greedy one shadows
    the right one."""
    claimed = [str(a) for a in refused if transport.can_dial(a)]
    assert not claimed, f"can_dial claims other transports' addresses: {claimed}"
    claimed = [str(a) for a in refused if transport.can_listen(a)]
    assert not claimed, f"can_listen claims other transports' addresses: {claimed}"


async def check_dial_timeout(
    transport: Transport | MuxedTransport,
    blackhole_addr: Multiaddr | None,
    discard: Callable[[Any], None],
) -> None:
    """A dial to ``blackhole_addr`` (skipped when None) fails with a DialError that says
    "timed out" once its ``timeout`` has passed, not much later; ``discard`` cleans up
    a connection the dial should not have made."""
    if blackhole_addr is None:
        pytest.skip("no blackhole_addr fixture for this transport")
    start = time.monotonic()
    with pytest.raises(DialError) as info:
        async with asyncio.timeout(STEP):
            discard(await transport.dial(blackhole_addr, timeout=0.3))
    elapsed = time.monotonic() - start
    assert 0.25 <= elapsed < 2.0, f"dial timeout took {elapsed:.2f}s (asked 0.3 s)"
    assert "timed out" in str(info.value) or "timeout" in str(info.value).lower()
    await transport.close()


async def check_cancel_dial_leaks_nothing(
    transport: Transport | MuxedTransport, blackhole_addr: Multiaddr | None
) -> None:
    """Cancelled dials to ``blackhole_addr`` (skipped when None) raise CancelledError
    and leave no socket behind (an unclosed one raises ResourceWarning at the garbage
    collection, an error under the suites' warning filters)."""
    if blackhole_addr is None:
        pytest.skip("no blackhole_addr fixture for this transport")
    tasks = [asyncio.ensure_future(transport.dial(blackhole_addr, timeout=STEP)) for _ in "ab"]
    await asyncio.sleep(0.05)
    for task in tasks:
        task.cancel()
    for task in tasks:
        with pytest.raises(asyncio.CancelledError):
            await task
    await asyncio.sleep(0.01)
    gc.collect()
    await transport.close()


async def check_listener_reports_resolved_addrs(
    transport: Transport, listen_addr: Multiaddr
) -> None:
    """A listener reports at least one address, with the port actually bound (never
    the ``0`` it was asked for), and each one is dialable by this transport."""
    listener = await transport.listen(listen_addr, lambda c: c.reset())
    try:
        addrs = list(listener.addrs)
        assert addrs, "listener reports no address"
        for addr in addrs:
            for proto, value in addr.items():
                if proto.name in ("tcp", "udp", "sctp", "dccp"):
                    assert value not in (None, "0"), f"unresolved port in {addr}"
            assert transport.can_dial(addr), f"cannot dial its own listen address {addr}"
    finally:
        await listener.close()
        await transport.close()


async def check_write_waits_under_backpressure(
    transport: Transport, listen_addr: Multiaddr, *, limit: int = 64 << 20
) -> None:
    """Against a peer that never reads, ``await write()`` must eventually block.

    Writes 1 MiB at a time; a write pending for 0.5 s counts as blocked.  A transport
    whose write() never waits lets one slow peer take all the memory: it fails once
    ``limit`` bytes were accepted (bounded in time by :data:`STEP` as well).
    """
    conns: list[RawConnection] = []
    accepted: asyncio.Queue[RawConnection] = asyncio.Queue()
    listener = await transport.listen(listen_addr, _record(conns, accepted))
    dialed: RawConnection | None = None
    try:
        dialed = await transport.dial(listener.addrs[0], timeout=STEP)
        await asyncio.wait_for(accepted.get(), STEP)  # accepted, and never read
        chunk = bytes(1 << 20)
        written = 0
        deadline = time.monotonic() + STEP
        while True:
            if written >= limit or time.monotonic() > deadline:
                raise AssertionError(
                    f"write() accepted {written >> 20} MiB from a peer that does not read "
                    "without ever waiting: no backpressure"
                )
            try:
                await asyncio.wait_for(dialed.write(chunk), 0.5)
            except TimeoutError:
                return  # blocked: the peer's window and the buffers are full
            written += len(chunk)
    finally:
        await dispose(*([dialed] if dialed else []), *conns)
        await listener.close()
        await transport.close()


async def check_write_copies_caller_buffer(
    transport: Transport, listen_addr: Multiaddr, *, size: int = 4 << 20
) -> None:
    """After ``await write(buf)`` returns the caller may reuse ``buf``: the peer must
    receive the bytes as they were at the call (a transport that queues a reference
    to a ``bytearray`` sends whatever the caller wrote into it later)."""
    a, b = await open_pair(transport, listen_addr)
    try:
        original = _pattern(size, 7)
        reader = asyncio.ensure_future(read_all(b))
        buf = bytearray(original)
        for i in range(0, size, 1 << 20):
            piece = bytearray(original[i : i + (1 << 20)])
            await a.write(piece)
            piece[:] = bytes(len(piece))  # reuse the buffer right away
        await a.write(buf)
        buf[:] = bytes(len(buf))
        await a.close_write()
        got = await reader
        assert len(got) == 2 * size, f"peer received {len(got)} of {2 * size} bytes"
        assert got[:size] == original and got[size:] == original, (
            "the peer received bytes the caller wrote into its buffer after write() "
            "returned: write() kept a reference instead of copying"
        )
    finally:
        await dispose(a, b)
        await transport.close()


async def check_close_closes_listeners(
    transport: Transport, listen_addr: Multiaddr, dialer: Transport
) -> None:
    """``Transport.close()`` closes the listeners it opened: a later dial (from another
    transport instance, ``dialer``) fails."""
    conns: list[RawConnection] = []
    accepted: asyncio.Queue[RawConnection] = asyncio.Queue()
    listener = await transport.listen(listen_addr, _record(conns, accepted))
    addr = listener.addrs[0]
    try:
        first = await dialer.dial(addr, timeout=STEP)
        conns.append(first)
        await asyncio.wait_for(accepted.get(), STEP)
        await transport.close()
        await asyncio.sleep(0.01)
        late: RawConnection | None = None
        try:
            late = await dialer.dial(addr, timeout=STEP)
        except DialError:
            pass
        if late is not None:
            conns.append(late)
            raise AssertionError(f"{addr} still accepts connections after Transport.close()")
    finally:
        await dispose(*conns)
        await listener.close()
        await transport.close()
        await dialer.close()
