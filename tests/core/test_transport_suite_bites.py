"""The transport suite's checks fail deliberately broken transports.

Each broken transport is the TCP transport with one bug added through its public
interface (a wrapper around the connections or the listeners it returns), so the only
difference from a passing run is that one bug.  Running the matching ``check_*`` of
:mod:`p2pkit.testing.transport_suite` must raise ``AssertionError``; the same check
passes on the unmodified transport.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from multiaddr import Multiaddr

from p2pkit.abc import ConnectionHandler, Listener, RawConnection
from p2pkit.testing.transport_suite import (
    check_can_dial_refuses,
    check_close_closes_listeners,
    check_listener_reports_resolved_addrs,
    check_write_copies_caller_buffer,
    check_write_waits_under_backpressure,
    default_refused_addrs,
)
from p2pkit_tcp import TcpTransport

LISTEN = Multiaddr("/ip4/127.0.0.1/tcp/0")


class _Conn:
    """Delegates to a real connection; subclasses override one method."""

    def __init__(self, inner: RawConnection) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class _NoBackpressureConn(_Conn):
    async def write(self, data: Any) -> None:
        self._inner.write_nowait(data)  # bug: never waits for the buffer to drain


class _KeepsBufferConn(_Conn):
    """Queues the caller's buffer itself and sends it on the next loop iteration."""

    async def write(self, data: Any) -> None:
        view = memoryview(data)  # bug: a reference, not a copy
        asyncio.get_running_loop().call_soon(self._send, view)

    def _send(self, view: memoryview) -> None:
        if not self._inner.closed:
            self._inner.write_nowait(bytes(view))

    async def close_write(self) -> None:
        await asyncio.sleep(0)  # after the queued sends
        await self._inner.close_write()


class _WrappingTcp(TcpTransport):
    conn_class: type[_Conn] = _Conn

    async def dial(self, addr: Multiaddr, *, timeout: float | None = None) -> RawConnection:
        conn: Any = self.conn_class(await super().dial(addr, timeout=timeout))
        return conn  # type: ignore[no-any-return]

    async def listen(self, addr: Multiaddr, handler: ConnectionHandler) -> Listener:
        cls = self.conn_class
        return await super().listen(addr, lambda c: handler(cls(c)))  # type: ignore[arg-type]


class NoBackpressureTcp(_WrappingTcp):
    conn_class = _NoBackpressureConn


class KeepsBufferTcp(_WrappingTcp):
    conn_class = _KeepsBufferConn


class GreedyTcp(TcpTransport):
    def can_dial(self, addr: Multiaddr) -> bool:
        return True  # bug: claims every address

    def can_listen(self, addr: Multiaddr) -> bool:
        return True


class LeakyCloseTcp(TcpTransport):
    async def close(self) -> None:
        return None  # bug: listeners stay open


class _Listener:
    def __init__(self, inner: Listener, addrs: list[Multiaddr]) -> None:
        self._inner = inner
        self.addrs = addrs

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class NoAddrsTcp(TcpTransport):
    async def listen(self, addr: Multiaddr, handler: ConnectionHandler) -> Listener:
        listener: Any = _Listener(await super().listen(addr, handler), [])
        return listener  # type: ignore[no-any-return]


class UnresolvedAddrsTcp(TcpTransport):
    async def listen(self, addr: Multiaddr, handler: ConnectionHandler) -> Listener:
        listener: Any = _Listener(await super().listen(addr, handler), [addr])  # port 0
        return listener  # type: ignore[no-any-return]


Check = Callable[[TcpTransport], Awaitable[None]]


async def _backpressure(t: TcpTransport) -> None:
    await check_write_waits_under_backpressure(t, LISTEN)


async def _copies(t: TcpTransport) -> None:
    await check_write_copies_caller_buffer(t, LISTEN)


async def _refuses(t: TcpTransport) -> None:
    check_can_dial_refuses(t, default_refused_addrs(LISTEN))
    await t.close()


async def _close(t: TcpTransport) -> None:
    await check_close_closes_listeners(t, LISTEN, TcpTransport())


async def _addrs(t: TcpTransport) -> None:
    await check_listener_reports_resolved_addrs(t, LISTEN)


CASES: list[tuple[str, Check, type[TcpTransport], str]] = [
    ("backpressure", _backpressure, NoBackpressureTcp, "no backpressure"),
    ("copies-buffer", _copies, KeepsBufferTcp, "kept a reference"),
    ("refuses-foreign", _refuses, GreedyTcp, "claims other transports"),
    ("close-listeners", _close, LeakyCloseTcp, "still accepts connections"),
    ("no-addrs", _addrs, NoAddrsTcp, "reports no address"),
    ("unresolved-addrs", _addrs, UnresolvedAddrsTcp, "unresolved port"),
]


@pytest.mark.parametrize(("name", "check", "broken", "message"), CASES, ids=[c[0] for c in CASES])
async def test_check_fails_the_broken_transport(name, check, broken, message):
    with pytest.raises(AssertionError, match=message):
        await check(broken())


@pytest.mark.parametrize(("name", "check", "broken", "message"), CASES, ids=[c[0] for c in CASES])
async def test_check_passes_the_real_transport(name, check, broken, message):
    await check(TcpTransport())
