"""p2pkit_prometheus: Prometheus metrics for p2pkit (the ``metrics`` plugin ``prometheus``).

:class:`PrometheusMetrics` implements :class:`p2pkit.metrics.Metrics` on
``prometheus_client`` and serves ``/metrics`` from the host's event loop
(:class:`MetricsServer`).  Names are imported on first use (PEP 562), so entry-point
discovery does not import ``prometheus_client``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from p2pkit.lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "PrometheusOptions": "p2pkit_prometheus.options",
    "PrometheusMetrics": "p2pkit_prometheus.backend",
    "MetricsServer": "p2pkit_prometheus.server",
}

__all__ = ["MetricsServer", "PrometheusMetrics", "PrometheusOptions"]

if TYPE_CHECKING:
    from p2pkit_prometheus.backend import PrometheusMetrics
    from p2pkit_prometheus.options import PrometheusOptions
    from p2pkit_prometheus.server import MetricsServer

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
