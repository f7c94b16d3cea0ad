"""Entry point ``p2pkit = prometheus``: the metrics plugin (``prometheus_client`` is
imported by the factory only, when a host is configured with it)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from p2pkit.plugins.spec import Components, PluginSpec, hookimpl
from p2pkit_prometheus.options import PrometheusOptions

if TYPE_CHECKING:
    from p2pkit.metrics import Metrics
    from p2pkit_prometheus.backend import PrometheusMetrics


def create(components: Components, options: PrometheusOptions) -> PrometheusMetrics:
    """Factory: one registry and one HTTP endpoint per host."""
    from p2pkit_prometheus.backend import PrometheusMetrics

    return PrometheusMetrics(options)


@hookimpl
def p2pkit_metrics() -> list[PluginSpec[Metrics]]:
    return [
        PluginSpec(
            kind="metrics",
            name="prometheus",
            factory=create,
            options=PrometheusOptions,
            priority=100,
            default_enabled=False,  # opens a port: only when asked for
            description="Prometheus text exposition over HTTP (prometheus-client)",
        )
    ]
