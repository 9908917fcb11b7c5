"""Prometheus metrics, hand-written (text exposition format 0.0.4, no dependency).

Counters and histograms are kept in process; gauges (ledger head, read-model and
relay positions) are collected when /metrics is scraped.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
COMMAND_BUCKETS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

Labels = tuple[tuple[str, str], ...]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(labels: Labels, extra: Labels = ()) -> str:
    pairs = [*labels, *extra]
    if not pairs:
        return ""
    return "{" + ",".join(f'{name}="{_escape(value)}"' for name, value in pairs) + "}"


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer():
        return str(int(value))
    return repr(float(value))


@dataclass
class _Histogram:
    buckets: tuple[float, ...]
    counts: list[int] = field(default_factory=list)
    total: float = 0.0
    count: int = 0

    def __post_init__(self) -> None:
        self.counts = [0] * len(self.buckets)

    def observe(self, value: float) -> None:
        for i, bound in enumerate(self.buckets):
            if value <= bound:
                self.counts[i] += 1
        self.total += value
        self.count += 1


@dataclass(frozen=True)
class Gauge:
    name: str
    help: str
    samples: Sequence[tuple[Labels, float]]


class Metrics:
    """Thread-safe counters and histograms of one API process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._commands: dict[Labels, int] = {}
        self._command_seconds: dict[Labels, _Histogram] = {}
        self._requests: dict[Labels, int] = {}
        self._auth_failures: dict[Labels, int] = {}

    def command(self, command_type: str, outcome: str, seconds: float) -> None:
        labels = (("command", command_type), ("outcome", outcome))
        with self._lock:
            self._commands[labels] = self._commands.get(labels, 0) + 1
            histogram = self._command_seconds.setdefault(labels, _Histogram(COMMAND_BUCKETS))
            histogram.observe(seconds)

    def request(self, method: str, route: str, status: int) -> None:
        labels = (("method", method), ("route", route), ("status", str(status)))
        with self._lock:
            self._requests[labels] = self._requests.get(labels, 0) + 1

    def auth_failure(self, reason: str) -> None:
        labels = (("reason", reason),)
        with self._lock:
            self._auth_failures[labels] = self._auth_failures.get(labels, 0) + 1

    def render(self, gauges: Iterable[Gauge] = ()) -> str:
        lines: list[str] = []
        with self._lock:
            _counter(
                lines,
                "dealledger_commands_total",
                "Commands handled, by command type and outcome (accepted, replayed or "
                "the problem code).",
                self._commands,
            )
            name = "dealledger_command_duration_seconds"
            lines.append(f"# HELP {name} Time to handle a command, by type and outcome.")
            lines.append(f"# TYPE {name} histogram")
            for labels, h in sorted(self._command_seconds.items()):
                for bound, count in zip(h.buckets, h.counts, strict=True):
                    le = (("le", _number(bound)),)
                    lines.append(f"{name}_bucket{_labels(labels, le)} {count}")
                lines.append(f"{name}_bucket{_labels(labels, (('le', '+Inf'),))} {h.count}")
                lines.append(f"{name}_sum{_labels(labels)} {_number(h.total)}")
                lines.append(f"{name}_count{_labels(labels)} {h.count}")
            _counter(
                lines,
                "dealledger_http_requests_total",
                "HTTP requests, by method, route template and status.",
                self._requests,
            )
            _counter(
                lines,
                "dealledger_auth_failures_total",
                "Requests refused as unauthenticated, by reason.",
                self._auth_failures,
            )
        for gauge in gauges:
            lines.append(f"# HELP {gauge.name} {gauge.help}")
            lines.append(f"# TYPE {gauge.name} gauge")
            for labels, value in gauge.samples:
                lines.append(f"{gauge.name}{_labels(labels)} {_number(value)}")
        return "\n".join(lines) + "\n"


def _counter(lines: list[str], name: str, help_text: str, values: dict[Labels, int]) -> None:
    lines.append(f"# HELP {name} {help_text}")
    lines.append(f"# TYPE {name} counter")
    for labels, value in sorted(values.items()):
        lines.append(f"{name}{_labels(labels)} {value}")
