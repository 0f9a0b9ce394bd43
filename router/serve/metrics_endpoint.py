"""``GET /metrics``: Prometheus text for the service.

Request counts by endpoint, status and model type, a latency histogram, rows scored, requests
in flight and the time spent queueing for a model instance — plus the pools' figures as
gauges under the names the batch ``--metrics-textfile`` uses (``modelrouter_pool_borrows``,
``modelrouter_pool_in_use``, …), read from the router's stats snapshots at scrape time. Each
app gets its own registry, so two apps in one process (tests, mounting) never share counters.

With several processes serving one port (``serve --processes N``) each scrape reaches one of
them, so each process's figures alone would jump from scrape to scrape (a counter seen going
back is a reset to Prometheus). There every process writes its metrics to files in a folder
the processes share (prometheus_client's multiprocess mode: the supervisor sets
``PROMETHEUS_MULTIPROC_DIR`` for them) and ``/metrics`` sums them, whichever answers:
counters and histograms over every process that served, so a replaced one's requests still
count; pool gauges as :data:`SHARED_POOL_MODES` says. The pool gauges are published by each
process once loaded, then once a second (:meth:`ServeMetrics.publish_pools`), and by the one
that answers just before it reads them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from modelrouter import ModelType, PoolStats
from modelrouter.batch.prometheus import POOL_GAUGES
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

__all__ = ["CONTENT_TYPE", "SHARED_POOL_MODES", "ServeMetrics", "publish_shared_pools"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Seconds; from a 1-row request on a warm pool (~1 ms) to a large file body.
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

# The batch textfile's help texts speak of "the run"; a service's pools live as long as it does.
_POOL_HELP = {
    "available": "Instances not lent out.",
    "in_use": "Instances lent out.",
    "borrows": "Instance acquisitions since the service started.",
}


#: How the processes' pool gauges add up (prometheus_client's multiprocess modes): the state of
#: the instances now over the live processes; running totals over every process that served
#: (a replaced process's last published figures stay in); the longest wait of any; the
#: utilisation of each live process, labelled with its ``pid`` (a ratio does not add up).
SHARED_POOL_MODES: dict[str, str] = {
    "size": "livesum",
    "available": "livesum",
    "in_use": "livesum",
    "borrows": "sum",
    "waits": "sum",
    "wait_total": "sum",
    "wait_max": "max",
    "busy_time": "sum",
    "utilisation": "liveall",
    "chunks": "sum",
    "rows": "sum",
    "errors": "sum",
}


_shared_pool_gauges: dict[str, Gauge] = {}


def publish_shared_pools(stats: Mapping[ModelType, PoolStats]) -> None:
    """Write this process's pool figures where the other processes of the service read them
    (multiprocess mode only: ``PROMETHEUS_MULTIPROC_DIR`` set when prometheus_client was
    imported). The gauges are the process's own, outside any registry: ``/metrics`` reads
    them from their files."""
    if not _shared_pool_gauges:
        for key, name, help_text in POOL_GAUGES:
            _shared_pool_gauges[key] = Gauge(
                f"modelrouter_{name}",
                _POOL_HELP.get(key, help_text),
                ["model_type"],
                registry=None,
                multiprocess_mode=SHARED_POOL_MODES[key],  # type: ignore[arg-type]
            )
    for kind, snapshot in stats.items():
        figures = snapshot.as_dict()
        for key, gauge in _shared_pool_gauges.items():
            gauge.labels(str(kind)).set(float(figures[key]))


class _PoolCollector(Collector):
    """Pool gauges, read from the router's immutable stats snapshots at every scrape."""

    def __init__(self, stats: Callable[[], Mapping[ModelType, PoolStats]]) -> None:
        self._stats = stats

    def collect(self) -> Iterator[GaugeMetricFamily]:
        snapshots = {str(kind): s.as_dict() for kind, s in self._stats().items()}
        for key, name, help_text in POOL_GAUGES:
            family = GaugeMetricFamily(
                f"modelrouter_{name}", _POOL_HELP.get(key, help_text), labels=["model_type"]
            )
            for kind, stats in snapshots.items():
                family.add_metric([kind], float(stats[key]))
            yield family


class ServeMetrics:
    """The service's metrics in a registry of their own; with ``shared`` (the folder of
    prometheus_client's multiprocess mode, which must then be this process's
    ``PROMETHEUS_MULTIPROC_DIR``), the whole service's, summed over its processes."""

    def __init__(
        self, stats: Callable[[], Mapping[ModelType, PoolStats]], *, shared: str | None = None
    ) -> None:
        self._stats = stats
        self._shared = shared
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "modelrouter_http_requests",
            "HTTP requests answered, by endpoint, status code and model type.",
            ["endpoint", "status", "model_type"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "modelrouter_http_request_duration_seconds",
            "Time from a request's arrival to its answer, by endpoint and model type.",
            ["endpoint", "model_type"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.rows = Counter(
            "modelrouter_http_rows",
            "Rows scored by successful requests, by endpoint and model type.",
            ["endpoint", "model_type"],
            registry=self.registry,
        )
        self.queue_wait = Histogram(
            "modelrouter_http_instance_wait_seconds",
            "Time a scoring request waited for a free model instance, by model type.",
            ["model_type"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch_requests = Histogram(
            "modelrouter_http_batch_requests",
            "Requests scored together in one model call (serve --max-batch-rows), by model type.",
            ["model_type"],
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "modelrouter_http_requests_in_flight",
            "Requests being handled.",
            registry=self.registry,
            multiprocess_mode="livesum",  # used in multiprocess mode only
        )
        if shared is None:
            self.registry.register(_PoolCollector(stats))
        # The labelled children of ``requests`` and ``latency`` per label set, looked up once:
        # prometheus_client's own lookup (a lock, label checks) cost a few percent of a
        # served 1-row request. The keys are bounded as the label values are (route paths,
        # status codes, configured model types).
        self._answers: dict[tuple[str, int, str], tuple[Any, Any]] = {}

    def answered(self, endpoint: str, status: int, model_type: str, seconds: float) -> None:
        """Count one answer of ``endpoint`` and time it."""
        key = (endpoint, status, model_type)
        children = self._answers.get(key)
        if children is None:
            children = self._answers[key] = (
                self.requests.labels(endpoint, str(status), model_type),
                self.latency.labels(endpoint, model_type),
            )
        children[0].inc()
        children[1].observe(seconds)

    @property
    def shared(self) -> bool:
        """Whether the metrics are the whole service's, summed over its processes."""
        return self._shared is not None

    def publish_pools(self) -> None:
        """Write this process's pool figures where the other processes read them (shared
        metrics only; otherwise they are read at each scrape)."""
        if self._shared is not None:
            publish_shared_pools(self._stats())

    def render(self) -> bytes:
        """The exposition text."""
        if self._shared is None:
            return generate_latest(self.registry)
        self.publish_pools()
        merged = CollectorRegistry()
        multiprocess.MultiProcessCollector(merged, path=self._shared)  # type: ignore[no-untyped-call]
        return generate_latest(merged)
