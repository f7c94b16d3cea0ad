"""asyncio shell of multistream-select over any :class:`~p2pkit.abc.ByteStream`.

The helpers read whole chunks (one ``read()`` per packet, not byte by byte) and hand
whatever they read past the last negotiation message back with ``stream.unread()``,
so the selected protocol starts exactly at its first byte.  Timeouts cover the whole
negotiation and raise :class:`~p2pkit.errors.NegotiationTimeout`; EOF before the end
raises :class:`~p2pkit.errors.NegotiationError`.  On failure the stream is left as is:
the caller decides whether to reset it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from contextlib import suppress

from p2pkit.abc import Buffer, ByteStream
from p2pkit.errors import NegotiationError, NegotiationTimeout, P2PError
from p2pkit.multistream.sansio import Initiator, ListRequest, Responder
from p2pkit.timerwheel import coarse_timeout

DEFAULT_TIMEOUT = 10.0


async def _run(
    stream: ByteStream,
    machine: Initiator | Responder | ListRequest,
    limit: float | None,
) -> None:
    """Drive ``machine`` until done, under one deadline for the whole exchange."""
    try:
        async with coarse_timeout(limit) as deadline:  # (p2pkit.timerwheel: why)
            out = machine.data_to_send()
            if out:
                await stream.write(out)
            while not machine.done:
                data = await stream.read()
                if not data:
                    raise NegotiationError("stream closed during multistream-select")
                machine.receive_data(data)
                out = machine.data_to_send()
                if out:
                    await stream.write(out)
    except TimeoutError as exc:
        if isinstance(exc, P2PError) or not deadline.expired():
            raise
        raise NegotiationTimeout(f"multistream-select did not finish within {limit} s") from exc
    rest = machine.leftover
    if rest:
        stream.unread(rest)


async def select_outbound(
    stream: ByteStream,
    protocols: Sequence[str],
    *,
    timeout: float | None = DEFAULT_TIMEOUT,
) -> str:
    """Propose ``protocols`` in preference order; return the one the peer accepted.

    Raises ProtocolNotSupported when the peer refuses all of them.
    """
    init = Initiator(protocols)
    await _run(stream, init, timeout)
    selected = init.selected
    assert selected is not None
    return selected


async def select_inbound(
    stream: ByteStream,
    supported: Sequence[str] | Callable[[str], bool],
    *,
    timeout: float | None = DEFAULT_TIMEOUT,
) -> str:
    """Answer the peer's proposals; return the first one ``supported`` accepts.

    ``supported``: the ids we speak (also the answer to ``ls``) or a predicate.
    """
    resp = Responder(supported)
    await _run(stream, resp, timeout)
    selected = resp.selected
    assert selected is not None
    return selected


async def list_protocols(
    stream: ByteStream,
    *,
    timeout: float | None = DEFAULT_TIMEOUT,
) -> list[str] | None:
    """Ask the peer for its protocol list with ``ls``; None if it answered ``na``.

    A probe: the stream is then in the middle of a negotiation, close or reset it.
    """
    req = ListRequest()
    await _run(stream, req, timeout)
    return req.protocols


class LazyStream(ByteStream):
    """A stream whose single protocol was proposed but not yet confirmed.

    Writes go straight through (application data follows the proposal without a
    round trip).  The first ``read()`` first consumes the responder's header and
    echo (under ``timeout``) and raises ProtocolNotSupported if it said ``na``; after
    that every read costs one attribute check more than the inner stream's.
    """

    def __init__(self, inner: ByteStream, initiator: Initiator, timeout: float | None) -> None:
        self.inner = inner
        self.protocol: str = initiator.protocols[0]
        self._pending: Initiator | None = initiator  # None once confirmed
        self._timeout = timeout
        self._error: BaseException | None = None
        self._lock: asyncio.Lock | None = None

    @property
    def negotiated(self) -> bool:
        """True once the responder's confirmation has been read."""
        return self._pending is None

    async def complete(self) -> None:
        """Read and check the responder's answer now (idempotent)."""
        if self._error is not None:
            raise self._error
        if self._pending is None:
            return
        # A reader and a half-closing writer may both need the answer: one reads it,
        # the other waits for that (two reads on one stream would be an error).
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._error is not None:
                raise self._error
            init = self._pending
            if init is None:
                return
            try:
                await _run(self.inner, init, self._timeout)
            except (P2PError, TimeoutError) as exc:
                self._error = exc
                self.inner.reset()  # a stream whose protocol was refused is of no use
                raise
            self._pending = None

    async def read(self, max_bytes: int = -1) -> bytes:
        if self._pending is not None:
            await self.complete()
        return await self.inner.read(max_bytes)

    async def write(self, data: Buffer) -> None:
        await self.inner.write(data)

    async def close_write(self) -> None:
        await self.inner.close_write()

    async def close(self) -> None:
        # Like go's lazy client: read the responder's answer before closing, so that it
        # can still send it; failures do not matter any more at this point.
        if self._pending is not None and self._error is None:
            with suppress(P2PError, TimeoutError, ConnectionError):
                await self.complete()
        await self.inner.close()

    def reset(self) -> None:
        self.inner.reset()

    def unread(self, data: bytes) -> None:
        self.inner.unread(data)


async def select_outbound_lazy(
    stream: ByteStream,
    protocol: str,
    *,
    timeout: float | None = DEFAULT_TIMEOUT,
) -> LazyStream:
    """Send header + proposal for ``protocol`` and return at once (0-RTT selection).

    Use only when the peer is known to speak ``protocol``: if it does not, the error
    shows up at the first read, after our application data was already sent.
    """
    init = Initiator([protocol], lazy=True)
    await stream.write(init.data_to_send())
    return LazyStream(stream, init, timeout)
