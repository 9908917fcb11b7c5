"""Shared plumbing of the benchmarks: scale, isolated schemas and topics, repetitions,
figures with their baselines, and the quiet logger the measured components get.

Every figure is reported with a baseline measured in the same run on the same services,
and `ratio = median ÷ baseline median`: for rates a ratio of 0.10 means "a tenth of the
baseline's rate", for times and sizes 3.0 means "three times the baseline's".
"""

from __future__ import annotations

import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from commands.ledger import DealLedger
from infra.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Scale:
    """How much each scenario does; `--quick` picks the small one."""

    name: str
    reps: int  # measured repetitions per scenario (after one warm-up)
    commands: int  # scenario 1: commands per repetition
    raw_inserts: int  # scenario 1: raw INSERT transactions per repetition
    commands_per_client: int  # scenario 2: commands per client per repetition
    clients: int  # scenario 2
    audit_events: int  # scenario 3: events of the long deal (history replay)
    load_events: tuple[int, ...]  # scenario 3: deal lengths whose load time is measured
    relay_events: int  # scenario 4
    rebuild_events: int  # scenario 5
    freshness_seconds: float  # scenario 6: length of one measured repetition
    memory_events: int  # scenario 7
    memory_checkpoints: int  # scenario 7
    memory_reps: int  # scenario 7: measured passes (a full pass takes minutes)
    memory_seconds: float  # scenario 7: time budget of one projector pass
    backlog_events: int  # scenario 8: events the projector catches up
    http_seconds: float  # scenario 9: length of one measured repetition
    verify_events: int  # scenario 13: events of the store `verify --all` checks
    verify_reps: int  # scenario 13: measured passes (a full pass takes most of a minute)
    run_seconds: float  # whole run: scenario 7's pass is cut to finish within it (0: no cap)

    def to_json(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in vars(self).items()}


FULL = Scale(
    name="full",
    reps=3,
    commands=450,
    raw_inserts=2500,
    commands_per_client=50,
    clients=8,
    audit_events=10_000,
    load_events=(100, 1_000, 10_000),
    relay_events=10_000,
    rebuild_events=50_000,
    freshness_seconds=8.0,
    memory_events=200_000,
    memory_checkpoints=10,
    memory_reps=1,
    memory_seconds=900.0,
    backlog_events=100_000,
    http_seconds=15.0,
    verify_events=1_000_000,
    verify_reps=1,
    run_seconds=1500.0,
)

QUICK = Scale(
    name="quick",
    reps=3,
    commands=120,
    raw_inserts=600,
    commands_per_client=12,
    clients=8,
    audit_events=2_000,
    load_events=(100, 1_000, 2_000),
    relay_events=1_500,
    rebuild_events=5_000,
    freshness_seconds=2.0,
    memory_events=1_500,
    memory_checkpoints=4,
    memory_reps=2,
    memory_seconds=60.0,
    backlog_events=5_000,
    http_seconds=4.0,
    verify_events=20_000,
    verify_reps=3,
    run_seconds=0.0,
)


class QuietLog:
    """The `log` the relay and projector expect, silent below warnings so that
    logging is not what the benchmark measures."""

    def bind(self, **_: Any) -> QuietLog:
        return self

    def debug(self, event: str, **_: Any) -> None:
        pass

    def info(self, event: str, **_: Any) -> None:
        pass

    def warning(self, event: str, **fields: Any) -> None:
        print(f"[bench] warning: {event} {fields}", file=sys.stderr, flush=True)

    def error(self, event: str, **fields: Any) -> None:
        print(f"[bench] error: {event} {fields}", file=sys.stderr, flush=True)

    exception = error


LOG = QuietLog()


def say(text: str) -> None:
    print(f"[bench] {text}", file=sys.stderr, flush=True)


@dataclass
class Figure:
    """One measured quantity of a scenario, its baseline, and how they compare."""

    scenario: str  # e.g. "1"
    name: str  # stable key, e.g. "commands_one_client"
    title: str  # what the value is
    unit: str
    higher_is_better: bool
    samples: list[float]
    baseline_title: str
    baseline_samples: list[float]
    params: dict[str, Any] = field(default_factory=dict)
    checks: dict[str, Any] = field(default_factory=dict)
    note: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def baseline(self) -> float:
        return statistics.median(self.baseline_samples)

    @property
    def ratio(self) -> float:
        return self.median / self.baseline if self.baseline else float("nan")

    def to_json(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "name": self.name,
            "title": self.title,
            "unit": self.unit,
            "higher_is_better": self.higher_is_better,
            "median": self.median,
            "min": min(self.samples),
            "max": max(self.samples),
            "samples": self.samples,
            "baseline": {
                "title": self.baseline_title,
                "median": self.baseline,
                "min": min(self.baseline_samples),
                "max": max(self.baseline_samples),
                "samples": self.baseline_samples,
            },
            "ratio": self.ratio,
            "ratio_is": "median / baseline median",
            "params": self.params,
            "checks": self.checks,
            "note": self.note,
        }


def repeat(
    reps: int,
    measured: Callable[[int], float],
    baseline: Callable[[int], float],
    *,
    label: str,
    warm_measured: bool = True,
) -> tuple[list[float], list[float]]:
    """One warm-up of each (index 0, discarded), then `reps` measured pairs, the two
    sides interleaved so drift on a noisy machine hits both alike. Without
    `warm_measured` only the baseline warms up (for a measured side whose pass takes
    most of a minute, over the same rows the baseline's warm-up reads)."""
    say(f"{label}: warm-up")
    if warm_measured:
        measured(0)
    baseline(0)
    values: list[float] = []
    baselines: list[float] = []
    for rep in range(1, reps + 1):
        values.append(measured(rep))
        baselines.append(baseline(rep))
        say(f"{label}: repetition {rep}/{reps}: {values[-1]:.4g} vs baseline {baselines[-1]:.4g}")
    return values, baselines


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100), linear between the closest ranks."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


class Deadline:
    """Every load loop is bounded by a count and by this."""

    def __init__(self, seconds: float, what: str) -> None:
        self.until = time.monotonic() + seconds
        self.what = what

    @property
    def passed(self) -> bool:
        return time.monotonic() >= self.until

    def check(self) -> None:
        if self.passed:
            raise TimeoutError(f"benchmark step took too long: {self.what}")

    def remaining(self) -> float:
        return max(0.0, self.until - time.monotonic())


class Bench:
    """A benchmark run's services: every schema and topic it creates is its own
    (named after the run's tag) and is removed by `cleanup()`."""

    def __init__(self, database_url: str, kafka_bootstrap: str) -> None:
        self.database_url = database_url
        self.kafka_bootstrap = kafka_bootstrap
        self.tag = uuid.uuid4().hex[:8]
        self.schemas: list[str] = []
        self.topics: list[str] = []
        self.groups: list[str] = []

    def name(self, scenario: str) -> str:
        return f"bench_{self.tag}_{scenario}"

    def schema(self, scenario: str) -> str:
        schema = self.name(scenario)
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
        self.schemas.append(schema)
        return schema

    def topic(self, scenario: str, suffix: str) -> str:
        topic = f"bench.{self.tag}.{scenario}.{suffix}"
        self.topics.append(topic)
        return topic

    def group(self, scenario: str, suffix: str) -> str:
        group = f"bench-{self.tag}-{scenario}-{suffix}"
        self.groups.append(group)
        return group

    def settings(self, scenario: str, **overrides: Any) -> Settings:
        """Settings on a new schema of this run, with topics of this run."""
        values: dict[str, Any] = {
            "database_url": self.database_url,
            "database_schema": self.schema(scenario),
            "kafka_bootstrap": self.kafka_bootstrap,
            "events_topic": self.topic(scenario, "events"),
            "events_dlq_topic": self.topic(scenario, "events.dlq"),
            "commands_topic": self.topic(scenario, "commands"),
            "command_results_topic": self.topic(scenario, "command-results"),
            "commands_dlq_topic": self.topic(scenario, "commands.dlq"),
            "log_format": "json",
            "log_level": "WARNING",
            **overrides,
        }
        return Settings(**values)

    def create_topics(self, settings: Settings, *topics: str) -> None:
        from infra.kafka.admin import ensure_topics

        for topic in topics:
            if topic not in self.topics:
                self.topics.append(topic)
        ensure_topics(settings, LOG, list(topics))

    def cleanup(self) -> None:
        """Drops this run's schemas, deletes its topics and consumer groups."""
        for schema in self.schemas:
            try:
                with psycopg.connect(self.database_url, autocommit=True) as conn:
                    conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
            except psycopg.Error as exc:
                say(f"could not drop schema {schema}: {exc}")
        self.schemas.clear()
        from kafka import KafkaAdminClient
        from kafka.errors import KafkaError

        try:
            admin = KafkaAdminClient(
                bootstrap_servers=self.kafka_bootstrap, request_timeout_ms=15000
            )
        except KafkaError as exc:
            say(f"could not clean up Kafka topics {self.topics}: {exc!r}")
            return
        try:
            existing = set(admin.list_topics())
            mine = [t for t in self.topics if t in existing]
            if mine:
                try:
                    admin.delete_topics(mine, timeout_ms=30000)
                except KafkaError as exc:
                    say(f"could not delete topics {mine}: {exc!r}")
            self.topics.clear()
            delete_groups = getattr(admin, "delete_groups", None) or getattr(
                admin, "delete_consumer_groups", None
            )
            if self.groups and delete_groups is not None:
                try:
                    delete_groups(self.groups)
                except Exception as exc:  # best effort: a group that never joined is unknown
                    say(f"consumer group clean-up: {exc!r}")
            self.groups.clear()
        finally:
            admin.close()


def events_table(ledger: DealLedger) -> str:
    """The ledger's stored-events table, schema-qualified."""
    recorder: Any = ledger.recorder
    return f'"{recorder.datastore.schema}"."{recorder.events_table_name}"'


@contextmanager
def timed() -> Iterator[list[float]]:
    """`with timed() as t:` ... then `t[0]` is the elapsed seconds."""
    box: list[float] = []
    start = time.perf_counter()
    try:
        yield box
    finally:
        box.append(time.perf_counter() - start)
