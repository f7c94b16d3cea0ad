"""Deferred security protocols and muxers: built by the first connection that needs
them, once, and checked (p2pkit.deferred)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from p2pkit.abc import SecurityProtocol
from p2pkit.crypto import generate_private_key
from p2pkit.deferred import DeferredMuxer, DeferredSecurity, build_now, deferred_security
from p2pkit.errors import PluginError
from p2pkit.peer import PeerId
from p2pkit.plugins.spec import Components, PluginSpec
from p2pkit.security.plaintext import PROTOCOL_ID, PlaintextSecurity
from p2pkit.testing.memory import channel_pair


def _components() -> Components:
    key = generate_private_key("ed25519")
    return Components(private_key=key, peer_id=PeerId.from_public_key(key.public_key))


async def test_built_on_first_handshake_then_reused() -> None:
    built: list[SecurityProtocol] = []

    def factory(components: Components, options: Any) -> SecurityProtocol:
        built.append(PlaintextSecurity(components.private_key))
        return built[-1]

    spec = PluginSpec(kind="security", name="pt", protocol_id=PROTOCOL_ID, factory=factory)
    server_side = deferred_security(spec, _components(), None)
    client = PlaintextSecurity(generate_private_key("ed25519"))
    assert isinstance(server_side, DeferredSecurity)
    assert server_side.protocol_id == PROTOCOL_ID and not built  # offered, not built

    for _ in range(3):
        a, b = channel_pair()
        inbound, outbound = await asyncio.wait_for(
            asyncio.gather(server_side.secure_inbound(a), client.secure_outbound(b, None)), 10
        )
        assert inbound.remote_peer == outbound.local_peer
        inbound.reset()
        outbound.reset()
    assert len(built) == 1 and server_side.deferred.built


async def test_factory_building_the_wrong_thing_is_a_plugin_error() -> None:
    wrong_id = DeferredSecurity("/other/1.0.0", lambda: PlaintextSecurity(generate_private_key()))
    a, _b = channel_pair()
    with pytest.raises(PluginError, match=r"/other/1\.0\.0"):
        await wrong_id.secure_inbound(a)
    not_a_muxer = DeferredMuxer("/yamux/1.0.0", lambda: PlaintextSecurity(generate_private_key()))
    with pytest.raises(PluginError, match="not a StreamMuxer"):
        not_a_muxer.deferred.get()


def test_build_now_builds_stand_ins_and_passes_the_rest() -> None:
    built: list[int] = []

    def make() -> SecurityProtocol:
        built.append(1)
        return PlaintextSecurity(generate_private_key())

    stand_in = DeferredSecurity(PROTOCOL_ID, make)
    ready = PlaintextSecurity(generate_private_key())
    build_now([stand_in, ready])
    build_now([stand_in])
    assert built == [1] and stand_in.deferred.built


def test_spec_without_protocol_id_is_built_at_once() -> None:
    made: list[int] = []

    def factory(components: Components, options: Any) -> SecurityProtocol:
        made.append(1)
        return PlaintextSecurity(components.private_key)

    spec = PluginSpec(kind="security", name="pt", factory=factory)
    assert isinstance(deferred_security(spec, _components(), None), PlaintextSecurity)
    assert made == [1]
