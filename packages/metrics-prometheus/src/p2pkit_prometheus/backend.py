""":class:`p2pkit.metrics.Metrics` on ``prometheus_client``, one registry per host.

Each host gets its own ``CollectorRegistry`` (not the process-wide default), so several
hosts in one process, as in tests, export separately and never clash on names.  The
collectors the host registers run in the event loop's thread, right before each
exposition (:meth:`PrometheusMetrics.exposition`), which :class:`MetricsServer` serves
from that same loop: no thread reads the host's tables while the loop changes them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import prometheus_client
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from p2pkit.logs import get_logger
from p2pkit.metrics import DURATION_BUCKETS, Counter, Gauge, Histogram, Metrics
from p2pkit_prometheus.options import PrometheusOptions, split_address
from p2pkit_prometheus.server import MetricsServer

log = get_logger("prometheus")


class _Counter(Counter):
    def __init__(self, family: prometheus_client.Counter, labelled: bool) -> None:
        self._family = family
        self._labelled = labelled

    def inc(self, *labels: str, amount: float = 1.0) -> None:
        (self._family.labels(*labels) if self._labelled else self._family).inc(amount)


class _Gauge(Gauge):
    def __init__(self, family: prometheus_client.Gauge, labelled: bool) -> None:
        self._family = family
        self._labelled = labelled

    def set(self, value: float, *labels: str) -> None:
        (self._family.labels(*labels) if self._labelled else self._family).set(value)

    def clear(self) -> None:
        if self._labelled:
            self._family.clear()


class _Histogram(Histogram):
    def __init__(self, family: prometheus_client.Histogram, labelled: bool) -> None:
        self._family = family
        self._labelled = labelled

    def observe(self, value: float, *labels: str) -> None:
        (self._family.labels(*labels) if self._labelled else self._family).observe(value)


class PrometheusMetrics(Metrics):
    """Instrument families in a private registry, exported over HTTP while started."""

    def __init__(self, options: PrometheusOptions | None = None) -> None:
        self.options = options or PrometheusOptions()
        self.registry = CollectorRegistry(auto_describe=True)
        self._collectors: list[Callable[[], None]] = []
        self._server: MetricsServer | None = None

    def counter(self, name: str, help: str, labels: Sequence[str] = ()) -> Counter:
        family = prometheus_client.Counter(name, help, list(labels), registry=self.registry)
        return _Counter(family, bool(labels))

    def gauge(self, name: str, help: str, labels: Sequence[str] = ()) -> Gauge:
        family = prometheus_client.Gauge(name, help, list(labels), registry=self.registry)
        return _Gauge(family, bool(labels))

    def histogram(
        self,
        name: str,
        help: str,
        labels: Sequence[str] = (),
        buckets: Sequence[float] = DURATION_BUCKETS,
    ) -> Histogram:
        family = prometheus_client.Histogram(
            name, help, list(labels), registry=self.registry, buckets=list(buckets)
        )
        return _Histogram(family, bool(labels))

    def add_collector(self, callback: Callable[[], None]) -> None:
        self._collectors.append(callback)

    def collect(self) -> None:
        """Run the host's collectors (gauges, batched counts); a failing one is logged."""
        for callback in self._collectors:
            try:
                callback()
            except Exception:
                log.exception("metrics collector %r failed", callback)

    def exposition(self, accept: str = "") -> tuple[bytes, str]:
        """The current data in the format ``accept`` asks for (the Prometheus text
        format unless OpenMetrics is asked for) and its content type."""
        self.collect()
        encoder, content_type = choose_encoder(accept)
        return encoder(self.registry), content_type

    async def start(self) -> None:
        if self._server is None:
            host, port = split_address(self.options.address)
            self._server = MetricsServer(self.exposition, self.options.path)
            await self._server.start(host, port)

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            await server.stop()

    @property
    def endpoint(self) -> str | None:
        return self._server.url if self._server is not None else None


__all__ = ["PrometheusMetrics"]
