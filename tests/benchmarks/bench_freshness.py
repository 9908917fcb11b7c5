"""Scenario 6: end-to-end freshness, command commit -> visible in the pipeline read model.

The relay and the projector run as their own processes (as in production); this
process issues commands at a steady rate of half the maximum it measured for the same
command mix with both running, and a poller thread watches `rm_pipeline_deal` every
POLL_SECONDS. Latency = first poll that sees the change - the moment `execute`
returned (so the commit had happened). Baseline: a raw kafka-python producer (same
producer settings as the relay) and a raw consumer at the same rate, send -> receive.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from commands.ledger import DealLedger
from commands.models import CustomerIn, MoneyIn, MoveDealStage, OpenDeal
from infra.bootstrap import build_ledger
from infra.kafka.relay import producer_settings
from infra.settings import Settings
from tests.benchmarks.bench_common import (
    ROOT,
    Bench,
    Deadline,
    Figure,
    Scale,
    percentile,
    say,
)
from tests.integration.flow import settings_env
from tests.support import actors
from tests.support.actors import as_command_actor

SALES = as_command_actor(actors.SALES)
POLL_SECONDS = 0.005
SETTLE_SECONDS = 30.0
PERCENTILES = (50, 95, 99)


def start_child(settings: Settings, *args: str, log: Path) -> subprocess.Popen[bytes]:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as handle:
        return subprocess.Popen(
            [sys.executable, "-m", "tests.benchmarks.bench_children", *args],
            cwd=ROOT,
            env=settings_env(settings),
            stdout=handle,
            stderr=subprocess.STDOUT,
        )


def stop_child(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


class Watcher:
    """Polls the pipeline read model for the changes it was told to expect."""

    def __init__(self, conninfo: str) -> None:
        self.conn = psycopg.connect(conninfo, autocommit=True)
        self.lock = threading.Lock()
        self.opened: dict[str, float] = {}  # deal id -> commit time; seen when the row exists
        self.moved: dict[str, float] = {}  # deal id -> commit time; seen at stage 'qualified'
        self.latencies: list[float] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="bench-watcher", daemon=True)

    def expect_open(self, deal_id: str, committed: float) -> None:
        with self.lock:
            self.opened[deal_id] = committed

    def expect_move(self, deal_id: str, committed: float) -> None:
        with self.lock:
            self.moved[deal_id] = committed

    @property
    def pending(self) -> int:
        with self.lock:
            return len(self.opened) + len(self.moved)

    def take(self) -> list[float]:
        with self.lock:
            taken, self.latencies = self.latencies, []
        return taken

    def _run(self) -> None:
        while not self.stop.is_set():
            with self.lock:
                ids = list({*self.opened, *self.moved})
            if ids:
                rows = self.conn.execute(
                    "SELECT deal_id, stage FROM rm_pipeline_deal WHERE deal_id = ANY(%s)", (ids,)
                ).fetchall()
                seen = time.perf_counter()
                with self.lock:
                    for deal_id, stage in rows:
                        if deal_id in self.opened:
                            self.latencies.append(seen - self.opened.pop(deal_id))
                        if stage == "qualified" and deal_id in self.moved:
                            self.latencies.append(seen - self.moved.pop(deal_id))
            self.stop.wait(POLL_SECONDS)

    def settle(self, seconds: float) -> int:
        """Waits for every expected change; returns how many never showed up."""
        deadline = Deadline(seconds, "freshness settle")
        while self.pending and not deadline.passed:
            time.sleep(0.05)
        with self.lock:
            missing = len(self.opened) + len(self.moved)
            self.opened.clear()
            self.moved.clear()
        return missing

    def close(self) -> None:
        self.stop.set()
        if self.thread.is_alive():
            self.thread.join(timeout=10)
        self.conn.close()


class Driver:
    """Opens a direct deal, then moves it to 'qualified': two commands per deal."""

    def __init__(self, ledger: DealLedger, watcher: Watcher) -> None:
        self.ledger = ledger
        self.watcher = watcher
        self.sent = 0
        self.last_deal: str | None = None

    def one(self) -> None:
        n = self.sent
        self.sent += 1
        if self.last_deal is None:
            outcome = self.ledger.execute(
                OpenDeal(
                    command_id=f"s6-open-{n}",
                    actor=SALES,
                    title=f"Fresh {n}",
                    customer=CustomerIn(
                        name=f"Fresh {n}", domain=f"fresh{n}.example", country="US"
                    ),
                    product_line="cloud",
                    amount=MoneyIn(amount=Decimal("50000"), currency="USD"),
                    expected_close=date(2030, 1, 1),
                    owner="ana",
                    region="NA",
                )
            )
            self.last_deal = str(outcome.aggregate_id)
            self.watcher.expect_open(self.last_deal, time.perf_counter())
        else:
            deal_id, self.last_deal = self.last_deal, None
            self.ledger.execute(
                MoveDealStage(
                    command_id=f"s6-move-{n}", actor=SALES, deal_id=deal_id, stage="qualified"
                )
            )
            self.watcher.expect_move(deal_id, time.perf_counter())

    def run(self, rate: float | None, seconds: float, limit: int) -> tuple[int, float]:
        """Issues commands (paced at `rate`/s, or flat out) for `seconds` or `limit`
        commands; returns (commands, achieved rate)."""
        start = time.perf_counter()
        count = 0
        while count < limit and time.perf_counter() - start < seconds:
            if rate:
                due = start + count / rate
                delay = due - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
            self.one()
            count += 1
        return count, count / (time.perf_counter() - start)


def _wait_for_read_model(conninfo: str, seconds: float) -> None:
    deadline = Deadline(seconds, "projector to create its tables")
    with psycopg.connect(conninfo, autocommit=True) as conn:
        while True:
            row = conn.execute("SELECT to_regclass('rm_pipeline_deal') IS NOT NULL").fetchone()
            if row and row[0]:
                return
            deadline.check()
            time.sleep(0.1)


def _raw_kafka(settings: Settings, rate: float, seconds: float, limit: int) -> list[float]:
    """Send -> receive latencies of a raw producer and a raw consumer at `rate`/s."""
    topic = settings.events_topic
    consumer = KafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers, group_id=None, enable_auto_commit=False
    )
    producer = KafkaProducer(**producer_settings(settings))
    latencies: list[float] = []
    expected = [0]
    stop = threading.Event()
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        consumer.seek_to_end(*tps)
        for tp in tps:
            consumer.position(tp)

        def consume() -> None:
            while not stop.is_set():
                for records in consumer.poll(timeout_ms=100).values():
                    now = time.perf_counter()
                    for record in records:
                        latencies.append(now - json.loads(record.value)["sent"])

        thread = threading.Thread(target=consume, name="bench-raw-consumer", daemon=True)
        thread.start()
        padding = "x" * 700  # about the size of a relayed event
        start = time.perf_counter()
        count = 0
        while count < limit and time.perf_counter() - start < seconds:
            delay = start + count / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            value = json.dumps({"n": count, "sent": time.perf_counter(), "pad": padding})
            producer.send(topic, key=str(count % 64).encode(), value=value.encode())
            count += 1
        expected[0] = count
        producer.flush(timeout=30)
        deadline = Deadline(SETTLE_SECONDS, "raw consumer")
        while len(latencies) < count and not deadline.passed:
            time.sleep(0.05)
        stop.set()
        thread.join(timeout=10)
    finally:
        producer.close(timeout=5)
        consumer.close()
    return latencies


def freshness(bench: Bench, scale: Scale) -> list[Figure]:
    settings = bench.settings("s6")
    bench.create_topics(settings, settings.events_topic, settings.events_dlq_topic)
    conninfo = settings.psycopg_conninfo()
    logs = ROOT / ".run" / "logs"
    relay = start_child(settings, "relay", log=logs / f"bench-{bench.tag}-relay.log")
    projector = start_child(
        settings,
        "project",
        bench.group("s6", "projector"),
        log=logs / f"bench-{bench.tag}-projector.log",
    )
    ledger = build_ledger(settings)
    watcher: Watcher | None = None
    try:
        _wait_for_read_model(conninfo, 60)
        watcher = Watcher(conninfo)
        watcher.thread.start()
        driver = Driver(ledger, watcher)
        say("6: warm-up, and the maximum rate of this command mix with relay + projector on")
        flat_out = max(60, int(40 * scale.freshness_seconds))
        _, max_rate = driver.run(None, scale.freshness_seconds, flat_out)
        missing = watcher.settle(SETTLE_SECONDS)
        watcher.take()
        if missing:
            raise AssertionError(f"{missing} warm-up changes never reached the read model")
        rate = max_rate / 2
        limit = int(rate * scale.freshness_seconds) + 1
        measured: list[list[float]] = []
        unseen = 0
        sent = 0
        achieved: list[float] = []
        for rep in range(1, scale.reps + 1):
            count, got = driver.run(rate, scale.freshness_seconds, limit)
            unseen += watcher.settle(SETTLE_SECONDS)
            measured.append([v * 1000 for v in watcher.take()])
            sent += count
            achieved.append(got)
            say(
                f"6: repetition {rep}/{scale.reps}: {count} commands at {got:.1f}/s, "
                f"p50 {percentile(measured[-1], 50):.0f} ms"
            )
    finally:
        if watcher is not None:
            watcher.close()
        ledger.close()
        stop_child(relay)
        stop_child(projector)
    raw_settings = settings.model_copy(update={"events_topic": bench.topic("s6", "raw")})
    bench.create_topics(raw_settings, raw_settings.events_topic)
    say("6: raw Kafka baseline at the same rate")
    _raw_kafka(raw_settings, rate, min(2.0, scale.freshness_seconds), limit)  # warm-up
    baseline: list[list[float]] = []
    for _ in range(scale.reps):
        baseline.append(
            [v * 1000 for v in _raw_kafka(raw_settings, rate, scale.freshness_seconds, limit)]
        )
    checks: dict[str, Any] = {"ok": unseen == 0, "changes_never_seen": unseen}
    params = {
        "max_rate_commands_per_s": round(max_rate, 1),
        "target_rate_commands_per_s": round(rate, 1),
        "achieved_rate_commands_per_s": [round(a, 1) for a in achieved],
        "seconds_per_rep": scale.freshness_seconds,
        "commands_measured": sent,
        "poll_interval_ms": POLL_SECONDS * 1000,
        "mix": "OpenDeal (direct), then MoveDealStage of that deal",
        "relay_and_projector": "separate processes (bench_children relay / project)",
    }
    return [
        Figure(
            scenario="6",
            name=f"freshness_p{q}",
            title=f"p{q} command commit -> visible in the pipeline read model",
            unit="ms",
            higher_is_better=False,
            samples=[percentile(values, q) for values in measured],
            baseline_title=f"p{q} raw Kafka produce -> consume, same rate",
            baseline_samples=[percentile(values, q) for values in baseline],
            params=params,
            checks=checks,
        )
        for q in PERCENTILES
    ]
