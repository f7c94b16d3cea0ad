"""Choosing the transport for an address.

The rule (documented in the core README): the configured transports are ranked by
their spec's ``priority``, higher first, ties by name (the configuration builds them
in that order); the first one whose ``can_dial`` / ``can_listen`` accepts the address
handles it.  So a third-party transport that claims too much cannot shadow a
higher-priority one.  When more than one transport claims an address, a warning is
logged once per address shape (its protocol names), so the overlap is visible without
flooding the log.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any, Protocol, TypeVar

from multiaddr import Multiaddr

from p2pkit.errors import AddressError
from p2pkit.plugins.hints import distribution_for_address
from p2pkit.plugins.spec import PluginSpec

log = logging.getLogger(__name__)


class _Claimant(Protocol):
    name: str

    def can_dial(self, addr: Multiaddr) -> bool: ...

    def can_listen(self, addr: Multiaddr) -> bool: ...


T = TypeVar("T", bound=_Claimant)

#: Address shapes already warned about (bounded: a peer feeding us many shapes cannot
#: grow it past this; beyond it, overlaps are no longer reported).
MAX_WARNED_SHAPES = 256
_warned: set[tuple[tuple[str, ...], tuple[str, ...]]] = set()


def choose_transport(
    transports: Sequence[T],
    addr: Multiaddr,
    *,
    listen: bool,
    installed: Iterable[PluginSpec[Any]] = (),
) -> T:
    """The transport that handles ``addr``: the first of ``transports`` (in priority
    order) that claims it.  Raises AddressError naming what to enable or install when
    none does; ``installed`` (the registry's transport specs) lets the message name an
    installed but unconfigured transport."""
    claimants = [t for t in transports if (t.can_listen(addr) if listen else t.can_dial(addr))]
    if not claimants:
        raise AddressError(_no_transport(transports, addr, listen, installed))
    if len(claimants) > 1:
        _warn_overlap(addr, claimants)
    return claimants[0]


def _shape(addr: Multiaddr) -> tuple[str, ...]:
    return tuple(p.name for p in addr.protocols())


def _warn_overlap(addr: Multiaddr, claimants: Sequence[_Claimant]) -> None:
    key = (_shape(addr), tuple(t.name for t in claimants))
    if key in _warned or len(_warned) >= MAX_WARNED_SHAPES:
        return
    _warned.add(key)
    log.warning(
        "transports %s all claim %s addresses; using %r (highest priority)",
        ", ".join(repr(t.name) for t in claimants),
        "/" + "/".join(key[0]),
        claimants[0].name,
    )


def _no_transport(
    transports: Sequence[_Claimant],
    addr: Multiaddr,
    listen: bool,
    installed: Iterable[PluginSpec[Any]],
) -> str:
    names = ", ".join(t.name for t in transports) or "none"
    protocols = list(_shape(addr))
    hint = ""
    configured = {t.name for t in transports}
    specs = list(installed)
    unused = [s for s in specs if s.name not in configured and set(s.provides) & set(protocols)]
    dist = distribution_for_address(protocols)
    if unused:
        hint = f"; enable the installed transport {unused[0].name!r}"
    elif dist is not None and not any(s.package == dist for s in specs):
        hint = f"; install its transport: pip install {dist}"
    return (
        f"no installed transport can {'listen on' if listen else 'dial'} {addr} "
        f"(transports: {names}){hint}"
    )
