"""Prometheus metrics of one API process, on `prometheus_client`.

Each `Metrics` has its own registry, so several apps in one process (tests) keep
apart. Counters and the latency histogram are kept in process; gauges (ledger head,
read-model and relay positions) are read when /metrics is scraped, by a collector.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

CONTENT_TYPE = CONTENT_TYPE_LATEST
COMMAND_BUCKETS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

# A counter's creation time (`*_created`) is not one of these metrics; the library
# decides that for the whole process, when it collects.
disable_created_metrics()  # type: ignore[no-untyped-call]  # the library leaves it untyped

GaugeSource = Callable[[], Iterable[Metric]]


class Metrics:
    """Counters and histograms of one API process, and the gauges read at scrape time."""

    def __init__(self, gauges: GaugeSource = tuple) -> None:
        self.registry = CollectorRegistry()
        self._commands = Counter(
            "dealledger_commands_total",
            "Commands handled, by command type and outcome (accepted, replayed or "
            "the problem code).",
            ("command", "outcome"),
            registry=self.registry,
        )
        self._command_seconds = Histogram(
            "dealledger_command_duration_seconds",
            "Time to handle a command, by type and outcome.",
            ("command", "outcome"),
            buckets=COMMAND_BUCKETS,
            registry=self.registry,
        )
        self._requests = Counter(
            "dealledger_http_requests_total",
            "HTTP requests, by method, route template and status.",
            ("method", "route", "status"),
            registry=self.registry,
        )
        self._auth_failures = Counter(
            "dealledger_auth_failures_total",
            "Requests refused as unauthenticated, by reason.",
            ("reason",),
            registry=self.registry,
        )
        self.registry.register(_AtScrape(gauges))

    def command(self, command_type: str, outcome: str, seconds: float) -> None:
        self._commands.labels(command_type, outcome).inc()
        self._command_seconds.labels(command_type, outcome).observe(seconds)

    def request(self, method: str, route: str, status: int) -> None:
        self._requests.labels(method, route, str(status)).inc()

    def auth_failure(self, reason: str) -> None:
        self._auth_failures.labels(reason).inc()

    def render(self) -> bytes:
        """The exposition text (`CONTENT_TYPE`), gauges read now."""
        return generate_latest(self.registry)


def gauge(name: str, help_text: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, help_text, value=value)


def labelled_gauge(
    name: str, help_text: str, label: str, values: Iterable[tuple[str, float]]
) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, help_text, labels=[label])
    for key, value in values:
        family.add_metric([key], value)
    return family


class _AtScrape(Collector):
    """The gauges, read when scraped, then how long reading them took."""

    def __init__(self, gauges: GaugeSource) -> None:
        self._gauges = gauges

    def collect(self) -> Iterator[Metric]:
        started = time.perf_counter()
        read = list(self._gauges())
        yield from read
        yield gauge(
            "dealledger_metrics_scrape_seconds",
            "Time to collect these metrics.",
            time.perf_counter() - started,
        )
