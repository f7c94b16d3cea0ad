"""The ``metrics`` plugin kind, through the same registry path as every plugin, with a
small in-process backend written against :class:`p2pkit.metrics.Metrics` (as a
third-party plugin would be), over the in-memory native transport."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from p2pkit.builder import HostBuilder
from p2pkit.host_metrics import SERIES
from p2pkit.metrics import DURATION_BUCKETS, Counter, Gauge, Histogram, Metrics
from p2pkit.plugins import Components, NoOptions, PluginSpec
from p2pkit.plugins.registry import PluginRegistry
from p2pkit.protocols.echo import PROTOCOL_ID as ECHO
from p2pkit.testing.memory_muxed import MEMORY_TRANSPORT

pytestmark = pytest.mark.timeout(30)


class Table:
    """label values -> value, for one family."""

    def __init__(self) -> None:
        self.values: dict[tuple[str, ...], float] = {}


class RecCounter(Counter, Table):
    def inc(self, *labels: str, amount: float = 1.0) -> None:
        assert amount >= 0
        self.values[labels] = self.values.get(labels, 0.0) + amount


class RecGauge(Gauge, Table):
    def set(self, value: float, *labels: str) -> None:
        self.values[labels] = value

    def clear(self) -> None:
        self.values.clear()


class RecHistogram(Histogram, Table):
    def observe(self, value: float, *labels: str) -> None:
        self.values[labels] = self.values.get(labels, 0.0) + 1  # the count


class Recorder(Metrics):
    """Keeps every family in memory; ``export()`` runs the collectors, as a scrape would."""

    def __init__(self) -> None:
        self.families: dict[str, tuple[Table, tuple[str, ...]]] = {}
        self.collectors: list[Callable[[], None]] = []
        self.running = False

    def _add(self, name: str, family: Any, labels: Sequence[str]) -> Any:
        assert name not in self.families, name
        self.families[name] = (family, tuple(labels))
        return family

    def counter(self, name: str, help: str, labels: Sequence[str] = ()) -> Counter:
        return self._add(name, RecCounter(), labels)  # type: ignore[no-any-return]

    def gauge(self, name: str, help: str, labels: Sequence[str] = ()) -> Gauge:
        return self._add(name, RecGauge(), labels)  # type: ignore[no-any-return]

    def histogram(
        self,
        name: str,
        help: str,
        labels: Sequence[str] = (),
        buckets: Sequence[float] = DURATION_BUCKETS,
    ) -> Histogram:
        return self._add(name, RecHistogram(), labels)  # type: ignore[no-any-return]

    def add_collector(self, callback: Callable[[], None]) -> None:
        self.collectors.append(callback)

    async def start(self) -> None:
        self.running = True

    async def stop(self) -> None:
        self.running = False

    def export(self) -> dict[str, dict[tuple[str, ...], float]]:
        for callback in self.collectors:
            callback()
        return {name: dict(family.values) for name, (family, _) in self.families.items()}


def _registry(default_enabled: bool = False) -> PluginRegistry:
    def create(components: Components, options: Any) -> Recorder:
        return Recorder()

    registry = PluginRegistry(load_entry_points=False)
    spec: PluginSpec[Metrics] = PluginSpec(
        kind="metrics",
        name="recorder",
        factory=create,
        options=NoOptions,
        default_enabled=default_enabled,
    )
    registry.add(MEMORY_TRANSPORT, spec)
    return registry


def _builder(registry: PluginRegistry) -> HostBuilder:
    return HostBuilder(registry).transport("memory").option(security=[], muxers=[])


async def test_a_metrics_plugin_records_the_host() -> None:
    registry = _registry()
    listener = (
        _builder(registry).listen("/memory/0").option(enable_echo=True, metrics="recorder").build()
    )
    client = _builder(registry).build()
    assert isinstance(listener.metrics, Recorder) and client.metrics is None
    recorder = listener.metrics
    assert set(recorder.families) == set(SERIES)
    assert {n: labels for n, (_, labels) in recorder.families.items()} == {
        n: labels for n, (_, _, labels) in SERIES.items()
    }
    async with listener, client:
        assert recorder.running
        stream = await client.new_stream(listener.addrs_with_peer_id[0], [ECHO])
        await stream.write(b"x" * 1000)
        await stream.close_write()
        got = b""
        while chunk := await stream.read():
            got += chunk
        assert got == b"x" * 1000
        data = recorder.export()
        conns = data["p2pkit_connections"]
        assert list(conns.values()) == [1]
        (labels,) = conns
        assert labels[0] == "memory" and labels[3] == "inbound"
        assert data["p2pkit_streams_opened_total"][(ECHO, "inbound")] == 1
        # Application bytes only (not the negotiation), flushed in one batch.
        assert data["p2pkit_stream_bytes_received_total"][(ECHO,)] == 1000
        assert data["p2pkit_stream_bytes_sent_total"][(ECHO,)] == 1000
        assert recorder.export()["p2pkit_stream_bytes_received_total"][(ECHO,)] == 1000
        await stream.close()
        await client.disconnect(listener.peer_id)
        async with asyncio.timeout(5):
            while listener.connections():
                await asyncio.sleep(0.01)
        assert recorder.export()["p2pkit_connections"] == {}
    assert not recorder.running


async def test_the_default_enable_rule_applies_to_metrics_too() -> None:
    assert isinstance(_builder(_registry(default_enabled=True)).build().metrics, Recorder)
    assert _builder(_registry(default_enabled=False)).build().metrics is None


async def test_protocols_a_match_handler_takes_are_labelled_by_its_id() -> None:
    """A handler registered with ``match`` takes protocol ids the peer makes up: each
    used to become a label value of its own (a new series per id, kept for the life of
    the process, and an entry in the byte tallies): a stranger proposing ids at random
    grew the metrics without bound.  They are labelled by the handler's id now, as the
    exact ids are."""
    registry = _registry()
    listener = _builder(registry).listen("/memory/0").option(metrics="recorder").build()
    client = _builder(registry).build()
    assert isinstance(listener.metrics, Recorder)
    recorder = listener.metrics

    async def echo_once(stream: Any) -> None:
        await stream.write(await stream.read())

    listener.set_stream_handler("/app/", echo_once, match=lambda p: p.startswith("/app/"))
    async with listener, client:
        for i in range(20):
            stream = await client.new_stream(listener.addrs_with_peer_id[0], [f"/app/{i}"])
            assert stream.protocol == f"/app/{i}"  # the application still sees the real id
            await stream.write(b"hello")
            assert await stream.read() == b"hello"
            await stream.close()
        data = recorder.export()
        app = {k for k in data["p2pkit_streams_opened_total"] if k[0].startswith("/app/")}
        assert app == {("/app/", "inbound")}
        assert data["p2pkit_streams_opened_total"][("/app/", "inbound")] == 20
        assert data["p2pkit_stream_bytes_received_total"][("/app/",)] == 100
        assert [k for k in data["p2pkit_stream_bytes_sent_total"] if k[0] != "/ipfs/id/1.0.0"] == [
            ("/app/",)
        ]
