"""The metrics interface: what the core records through and a ``metrics`` plugin implements.

Three instrument kinds, each a *family* with fixed label names (the Prometheus data
model, which OpenTelemetry and StatsD-style backends can also represent):

* :class:`Counter`: only goes up (``inc``);
* :class:`Gauge`: a value set at collection time (``set``; ``clear`` drops every label
  set, so a series whose subject is gone disappears);
* :class:`Histogram`: observations counted into buckets (``observe``).

Label values are passed positionally, in the order of the family's label names.

Cost model, why the interface looks like this: the host records nothing at all unless
a metrics plugin is configured (no object, no listener, no hook is installed), and even
then nothing on the data path calls into the plugin.  Per-stream byte counts are summed
in plain integers and handed over in batches; levels (open connections, open streams)
and counts the core keeps anyway (refusals, trims, event-bus drops) are read when the
backend collects: :meth:`Metrics.add_collector` registers a callback the plugin runs
right before each export (a Prometheus scrape), in the event loop's thread.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence

#: Default histogram buckets for durations in seconds (handshakes: ms to the 10 s timeout).
DURATION_BUCKETS: tuple[float, ...] = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip


class Counter(abc.ABC):
    """A monotonically increasing count, per label set."""

    @abc.abstractmethod
    def inc(self, *labels: str, amount: float = 1.0) -> None:
        """Add ``amount`` (>= 0) to the series of ``labels``."""


class Gauge(abc.ABC):
    """A value that goes up and down, per label set."""

    @abc.abstractmethod
    def set(self, value: float, *labels: str) -> None: ...

    @abc.abstractmethod
    def clear(self) -> None:
        """Forget every label set (before setting the current ones at collection)."""


class Histogram(abc.ABC):
    """Observations counted into buckets, per label set."""

    @abc.abstractmethod
    def observe(self, value: float, *labels: str) -> None: ...


class Metrics(abc.ABC):
    """What a ``metrics`` plugin's factory returns: instrument families and a lifecycle.

    The host creates every family once, when it is built, then calls :meth:`start` when
    it starts and :meth:`stop` when it stops (a plugin that serves its data, such as an
    HTTP endpoint, opens and closes it there).  ``name`` is a full metric name
    (``p2pkit_connections``; counters end in ``_total``); ``labels`` are the label names.
    """

    @abc.abstractmethod
    def counter(self, name: str, help: str, labels: Sequence[str] = ()) -> Counter: ...

    @abc.abstractmethod
    def gauge(self, name: str, help: str, labels: Sequence[str] = ()) -> Gauge: ...

    @abc.abstractmethod
    def histogram(
        self,
        name: str,
        help: str,
        labels: Sequence[str] = (),
        buckets: Sequence[float] = DURATION_BUCKETS,
    ) -> Histogram: ...

    @abc.abstractmethod
    def add_collector(self, callback: Callable[[], None]) -> None:
        """Run ``callback()`` before each export, in the event loop's thread (it sets
        gauges and flushes batched counts); its exceptions must not stop the export."""

    async def start(self) -> None:  # noqa: B027 - optional hook
        """Begin exporting (the host is starting)."""

    async def stop(self) -> None:  # noqa: B027 - optional hook
        """Stop exporting and release what :meth:`start` opened (the host is stopping)."""

    @property
    def endpoint(self) -> str | None:
        """Where the data can be read (an URL), once started; None if not applicable."""
        return None


__all__ = ["DURATION_BUCKETS", "Counter", "Gauge", "Histogram", "Metrics"]
