"""Resource limits: connections (total, per direction, per peer), pending handshakes,
streams per connection, muxer receive memory per connection.

A limit never harms what exists: it refuses only the *new* connection or stream, with a
typed, logged :class:`LimitExceeded` naming the limit.  This module is the table; the
resource manager (``p2pkit.rcmgr``) keeps the counts and enforces it, scope by scope.

Where each limit is enforced:

* ``max_connections`` / ``max_inbound_connections`` / ``max_pending_inbound`` and the
  per-IP ``max_connections_per_ip`` / ``max_pending_per_ip``: when an inbound socket is
  accepted (handshakes in flight count as connections: the cheapest refusal, before any
  crypto), or, for a transport that handshakes by itself and asks
  (``MuxedTransport.accepts_admission``: QUIC, at the first Initial it would keep
  state for; ``p2pkit.admission``), before its handshake starts;
  ``max_outbound_connections`` / ``max_connections`` before dialing;
* ``max_connections_per_peer``: once the peer is known (after the security handshake);
* ``max_inbound_streams_per_conn``: the host resets a new inbound stream beyond it;
  a transport whose protocol grants stream credit (QUIC ``MAX_STREAMS``) grants no
  more than it, through its spec's ``apply_stream_limit`` hook (applied at
  configuration time), so its peer waits for credit instead of being reset;
  ``max_outbound_streams_per_conn``: ``new_stream`` raises before opening one;
* ``max_muxer_memory_per_conn``: applied at configuration time through each muxer
  spec's ``apply_memory_limit`` hook, which bounds the options that bound its receive
  buffers, so the muxer enforces it on its own hot path; and, with the memory limits
  below, by the resource manager (``p2pkit.rcmgr``);
* ``max_memory_per_peer``, ``max_memory_per_ip``, ``max_memory``: memory a muxer that
  accounts it (``StreamMuxer.accepts_memory_scope``) reserves for data received and not
  yet read, per peer, per IP prefix (loopback exempt) and for the whole node; a refusal
  resets the stream the data came on (:class:`~p2pkit.errors.StreamResetByLimit`).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from p2pkit.errors import ConfigError, ResourceLimitExceeded

if TYPE_CHECKING:
    from p2pkit.config import ResolvedPlugin

log = logging.getLogger(__name__)

Direction = Literal["inbound", "outbound"]


class LimitExceeded(ResourceLimitExceeded):
    """A new connection or stream was refused: ``limit`` (its name) is ``value``."""

    def __init__(self, limit: str, value: int, detail: str = "") -> None:
        self.limit = limit
        self.value = value
        super().__init__(
            f"resource limit {limit}={value} reached" + (f" ({detail})" if detail else "")
        )


def memory_budget() -> int:
    """The node's default memory budget: an eighth of this machine's RAM, at least
    128 MiB (4 GiB of RAM assumed where the platform cannot tell)."""
    try:
        ram = int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        ram = 4 << 30
    return max(ram // 8, 128 << 20)


@dataclasses.dataclass
class ResourceLimits:
    """The ``[p2pkit.limits]`` table.  ``None`` means unlimited.

    The per-IP limits follow go-libp2p's resource manager: 8 connections (and 8
    handshakes in flight) per IPv4 /32 or IPv6 /56, loopback exempt.  Memory: 64 MiB
    per peer (room for several auto-tuned yamux windows a slow application left
    full), 128 MiB per IP prefix (a few peers behind one address), an eighth of RAM for
    the node.
    """

    max_connections: int | None = None
    max_inbound_connections: int | None = None
    max_outbound_connections: int | None = None
    max_connections_per_peer: int | None = 8
    max_pending_inbound: int = 64
    max_connections_per_ip: int | None = 8
    max_pending_per_ip: int | None = 8
    max_inbound_streams_per_conn: int | None = None
    max_outbound_streams_per_conn: int | None = None
    max_muxer_memory_per_conn: int | None = None
    max_memory_per_peer: int | None = 64 << 20
    max_memory_per_ip: int | None = 128 << 20
    max_memory: int | None = dataclasses.field(default_factory=memory_budget)
    ip4_prefix: int = 32
    ip6_prefix: int = 56
    unlimited_networks: list[str] = dataclasses.field(
        default_factory=lambda: ["127.0.0.0/8", "::1/128"]
    )

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "unlimited_networks":
                try:
                    for net in value:
                        ipaddress.ip_network(net)
                except (TypeError, ValueError) as exc:
                    raise ConfigError(f"limits.unlimited_networks: {exc}") from exc
                continue
            if value is None and f.name != "max_pending_inbound":
                continue
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"limits.{f.name} must be a positive integer or unset")
        if self.ip4_prefix > 32 or self.ip6_prefix > 128:
            raise ConfigError("limits.ip4_prefix must be <= 32 and ip6_prefix <= 128")


@dataclasses.dataclass(frozen=True)
class ScopeLimit:
    """Limits of one scope; ``None`` is unlimited."""

    conns: int | None = None
    conns_inbound: int | None = None
    conns_outbound: int | None = None
    pending: int | None = None
    streams: int | None = None
    streams_inbound: int | None = None
    streams_outbound: int | None = None
    memory: int | None = None


UNLIMITED = ScopeLimit()


@dataclasses.dataclass(frozen=True)
class Limits:
    """The whole table: one :class:`ScopeLimit` per scope kind, plus IP grouping."""

    system: ScopeLimit
    ip: ScopeLimit
    peer: ScopeLimit
    conn: ScopeLimit
    stream: ScopeLimit
    ip4_prefix: int = 32
    ip6_prefix: int = 56
    unlimited_networks: tuple[str, ...] = ("127.0.0.0/8", "::1/128")
    names: Mapping[str, str] = dataclasses.field(default_factory=dict)
    """``scope.limit`` -> the name the user configured it by, for refusal messages."""


#: What each ``[p2pkit.limits]`` field limits, as ``scope.limit``.
TABLE_NAMES = {
    "system.conns": "max_connections",
    "system.conns_inbound": "max_inbound_connections",
    "system.conns_outbound": "max_outbound_connections",
    "system.pending": "max_pending_inbound",
    "system.memory": "max_memory",
    "ip.conns": "max_connections_per_ip",
    "ip.pending": "max_pending_per_ip",
    "ip.memory": "max_memory_per_ip",
    "peer.conns": "max_connections_per_peer",
    "peer.memory": "max_memory_per_peer",
    "conn.streams_inbound": "max_inbound_streams_per_conn",
    "conn.memory": "max_muxer_memory_per_conn",
}


def limits_from(table: ResourceLimits) -> Limits:
    """The scopes' limits from the ``[p2pkit.limits]`` table (one table for users)."""
    return Limits(
        system=ScopeLimit(
            conns=table.max_connections,
            conns_inbound=table.max_inbound_connections,
            conns_outbound=table.max_outbound_connections,
            pending=table.max_pending_inbound,
            memory=table.max_memory,
        ),
        ip=ScopeLimit(
            table.max_connections_per_ip,
            pending=table.max_pending_per_ip,
            memory=table.max_memory_per_ip,
        ),
        peer=ScopeLimit(conns=table.max_connections_per_peer, memory=table.max_memory_per_peer),
        conn=ScopeLimit(
            streams_inbound=table.max_inbound_streams_per_conn,
            memory=table.max_muxer_memory_per_conn,
        ),
        stream=UNLIMITED,
        ip4_prefix=table.ip4_prefix,
        ip6_prefix=table.ip6_prefix,
        unlimited_networks=tuple(table.unlimited_networks),
        names=TABLE_NAMES,
    )


def check_stream(
    limit: int | None, open_streams: int, direction: Direction
) -> LimitExceeded | None:
    """May one more stream in ``direction`` open on a connection with ``open_streams``?"""
    if limit is not None and open_streams >= limit:
        return LimitExceeded(f"max_{direction}_streams_per_conn", limit)
    return None


def apply_muxer_memory_limit(muxers: list[ResolvedPlugin], limit: int | None) -> None:
    """Bound each muxer's per-connection receive memory by ``limit`` bytes.

    Each muxer spec declares how (``PluginSpec.apply_memory_limit``: options in, bounded
    options out) and enforces the bound itself on its own hot path; the host adds no
    per-byte work.  A muxer without the hook cannot honour the limit: a warning says so.
    """
    if limit is None:
        return
    for plugin in muxers:
        hook = plugin.spec.apply_memory_limit
        if hook is None:
            log.warning(
                "muxer %s declares no memory hook: "
                "limits.max_muxer_memory_per_conn is not applied to it",
                plugin.spec.name,
            )
            continue
        _apply_hook(plugin, hook, "max_muxer_memory_per_conn", limit)


def apply_stream_limit(transports: list[ResolvedPlugin], limit: int | None) -> None:
    """Lower the inbound stream credit of each transport that multiplexes by itself to
    ``limit`` (``limits.max_inbound_streams_per_conn``).

    Only transports whose spec has ``PluginSpec.apply_stream_limit`` take it; for the
    others the swarm's reset of a stream beyond the limit stays the only bound (no
    warning: the limit holds either way, only the peer's experience differs).
    """
    if limit is None:
        return
    for plugin in transports:
        hook = plugin.spec.apply_stream_limit
        if hook is None:
            continue
        _apply_hook(plugin, hook, "max_inbound_streams_per_conn", limit)


def _apply_hook(plugin: ResolvedPlugin, hook: Any, name: str, limit: int) -> None:
    """``plugin.options = hook(plugin.options, limit)``; a value the plugin rejects is
    a ConfigError naming the limit."""
    try:
        plugin.options = hook(plugin.options, limit)
    except ConfigError:
        raise
    except (ValueError, TypeError) as exc:
        raise ConfigError(
            f"limits.{name}={limit} does not fit {plugin.spec.kind} {plugin.spec.name}: {exc}"
        ) from exc


__all__ = [
    "TABLE_NAMES",
    "UNLIMITED",
    "LimitExceeded",
    "Limits",
    "ResourceLimits",
    "ScopeLimit",
    "apply_muxer_memory_limit",
    "apply_stream_limit",
    "check_stream",
    "limits_from",
]
