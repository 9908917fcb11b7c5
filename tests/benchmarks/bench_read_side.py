"""Scenarios 8 and 9: the read side under a backlog and under HTTP load.

8. The live projector catching up a backlog (`backlog_events`, 100,000 in a full run)
   of realistic event messages already on the topic: events/s from the first poll to
   the last message applied. Two baselines of the same run:
   - raw batched INSERTs (`executemany`, 1,000 rows a batch, one transaction) of the
     rows the projector leaves behind, bookkeeping included, shown as events / time;
   - the write side's peak event rate: eight concurrent clients of scenario 2's mix,
     events stored per second.
9. `GET /v1/pipeline` under HTTP load: `dealledger serve` (PostgreSQL, no Kafka, so
   the API process feeds its read models in the background) with 16 concurrent HTTP
   clients mixing commands (stage moves), pipeline queries and deal histories. The
   figure is the pipeline query's p99; the baseline `GET /v1/deals/{id}/history`'s p99
   in the same load.
"""

from __future__ import annotations

import random
import secrets
import threading
import time
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import httpx
import psycopg

from commands.models import CustomerIn, MoneyIn, OnboardPartner, OpenDeal
from consumers.projector_host import ProjectorHost
from infra.bootstrap import build_ledger
from infra.kafka.relay import make_producer
from infra.settings import Settings
from projections.read_models import PROJECTIONS
from projections.store import POSITION_TABLE
from tests.benchmarks.bench_commands import Tally, _run_clients, onboard
from tests.benchmarks.bench_common import (
    LOG,
    ROOT,
    Bench,
    Deadline,
    Figure,
    Scale,
    percentile,
    repeat,
    say,
)
from tests.benchmarks.bench_data import synthetic_records
from tests.benchmarks.bench_edge import serve_api, stop_api
from tests.support import actors
from tests.support.actors import as_command_actor

SALES = as_command_actor(actors.SALES)
MANAGER = as_command_actor(actors.MANAGER)
STAGES = ("qualified", "proposal", "negotiation", "committed", "lead")
HTTP_CLIENTS = 16
HTTP_DEALS = 400


# -- scenario 8 ----------------------------------------------------------------------


def _produce(settings: Settings, events: int) -> None:
    producer = make_producer(settings)
    try:
        futures = [
            producer.send(settings.events_topic, key=key, value=value, headers=headers)
            for key, value, headers in synthetic_records(events)
        ]
        producer.flush(timeout=600)
        for future in futures[-100:]:
            future.get(timeout=0)
    finally:
        producer.close(timeout=10)


def _write_peak(bench: Bench, scale: Scale, rep: int) -> tuple[float, int]:
    """Events stored per second by eight concurrent clients (scenario 2's mix)."""
    settings = bench.settings(f"s8w{rep}")
    ledgers = [build_ledger(settings) for _ in range(scale.clients)]
    try:
        onboard(ledgers[0], [f"c{n}" for n in range(scale.clients)])
        before = ledgers[0].recorder.max_notification_id() or 0
        start = time.perf_counter()
        _run_clients(ledgers, "w", 1, scale.commands_per_client, Tally())
        elapsed = time.perf_counter() - start
        stored = (ledgers[0].recorder.max_notification_id() or 0) - before
    finally:
        for ledger in ledgers:
            ledger.close()
    return stored / elapsed, stored


def projector_catch_up(bench: Bench, scale: Scale) -> list[Figure]:
    events = scale.backlog_events
    settings = bench.settings("s8")
    bench.create_topics(settings, settings.events_topic, settings.events_dlq_topic)
    start = time.perf_counter()
    _produce(settings, events)
    say(f"8: produced a backlog of {events:,} events in {time.perf_counter() - start:.0f}s")
    schemas: dict[int, Settings] = {}

    def catch_up(rep: int) -> float:
        on = settings.model_copy(update={"database_schema": bench.schema(f"s8r{rep}")})
        schemas[rep] = on
        host = ProjectorHost(on, LOG, group_id=bench.group("s8", f"r{rep}"))
        deadline = Deadline(1200, "projector catching up the backlog")
        done = 0
        try:
            started = time.perf_counter()
            while done < events:
                deadline.check()
                done += host.poll_once(timeout_ms=1000)
            elapsed = time.perf_counter() - started
        finally:
            host.close()
        if host.dead_lettered:
            raise AssertionError(f"{host.dead_lettered} backlog events were dead-lettered")
        return events / elapsed

    row_counts: dict[str, int] = {}

    def raw_rate(rep: int) -> float:
        source = schemas[max(schemas)]  # the rows the last catch-up left behind
        with psycopg.connect(source.psycopg_conninfo(), autocommit=True) as conn:
            rows: dict[str, list[tuple[Any, ...]]] = {}
            for projection in PROJECTIONS:
                for table in projection.all_tables:
                    rows[table.name] = conn.execute(f"SELECT * FROM {table.name}").fetchall()
            rows[POSITION_TABLE] = conn.execute(f"SELECT * FROM {POSITION_TABLE}").fetchall()
            for name in rows:
                conn.execute(f"CREATE TABLE IF NOT EXISTS raw_{name} (LIKE {name} INCLUDING ALL)")
                conn.execute(f"TRUNCATE raw_{name}")
                row_counts[name] = len(rows[name])
            started = time.perf_counter()
            with conn.transaction(), conn.cursor() as cursor:
                for name, table_rows in rows.items():
                    if not table_rows:
                        continue
                    marks = ", ".join(["%s"] * len(table_rows[0]))
                    sql = f"INSERT INTO raw_{name} VALUES ({marks})"
                    for first in range(0, len(table_rows), 1000):
                        cursor.executemany(sql, table_rows[first : first + 1000])
            elapsed = time.perf_counter() - started
        return events / elapsed

    rates, raw = repeat(scale.reps, catch_up, raw_rate, label="8 projector catch-up")
    say("8: the write side's peak event rate, eight clients")
    peaks: list[float] = []
    for rep in range(scale.reps):
        peak, stored = _write_peak(bench, scale, rep)
        peaks.append(peak)
        say(f"8: write side stored {stored:,} events at {peak:.0f} events/s")
    params = {
        "backlog_events": events,
        "partitions": settings.topic_partitions,
        "rows": row_counts,
        "insert_batch": 1000,
        "write_clients": scale.clients,
        "write_commands_per_client": scale.commands_per_client,
    }
    return [
        Figure(
            scenario="8",
            name="projector_catch_up",
            title=f"projector events/s catching up a backlog of {events:,} events",
            unit="events/s",
            higher_is_better=True,
            samples=rates,
            baseline_title="raw batched INSERTs of the rows it leaves (events / time)",
            baseline_samples=raw,
            params=params,
        ),
        Figure(
            scenario="8",
            name="projector_vs_write_peak",
            title="projector events/s catching up, against the write side's peak",
            unit="events/s",
            higher_is_better=True,
            samples=rates,
            baseline_title=f"write side peak: events stored/s by {scale.clients} clients",
            baseline_samples=peaks,
            params=params,
            note="target: the projector applies at least 5 times what the write side stores",
        ),
    ]


# -- scenario 9 ----------------------------------------------------------------------


def _prepare_deals(settings: Settings, count: int) -> list[str]:
    ledger = build_ledger(settings)
    try:
        ledger.execute(
            OnboardPartner(command_id="s9-onboard", actor=MANAGER, partner_code="p9", name="P9")
        )
        deals = []
        for n in range(count):
            outcome = ledger.execute(
                OpenDeal(
                    command_id=f"s9-open-{n}",
                    actor=SALES,
                    title=f"Deal {n}",
                    customer=CustomerIn(name=f"Load {n}", domain=f"load{n}.example", country="US"),
                    product_line="cloud",
                    amount=MoneyIn(amount=Decimal(10_000 + n), currency="USD"),
                    expected_close=date(2030, 1, 1),
                    owner="sam",
                    region="NA",
                )
            )
            deals.append(str(outcome.aggregate_id))
        return deals
    finally:
        ledger.close()


class _Load:
    """16 HTTP clients: a third stage moves, a third pipeline queries, a third
    histories, for `seconds`; latencies per kind."""

    def __init__(self, base: str, key: str, deals: list[str]) -> None:
        self.base = base
        self.headers = {"Authorization": f"Bearer {key}"}
        self.deals = deals
        self.lock = threading.Lock()
        self.latencies: dict[str, list[float]] = {"command": [], "pipeline": [], "history": []}
        self.errors: list[str] = []

    def client(self, number: int, seconds: float) -> None:
        rng = random.Random(number)
        stop = time.monotonic() + seconds
        with httpx.Client(base_url=self.base, headers=self.headers, timeout=30) as http:
            while time.monotonic() < stop:
                kind = ("command", "pipeline", "history")[rng.randrange(3)]
                deal = rng.choice(self.deals)
                started = time.perf_counter()
                if kind == "command":
                    stage = STAGES[rng.randrange(len(STAGES))]
                    response = http.post(f"/v1/deals/{deal}/stage", json={"stage": stage})
                    good = response.status_code in (200, 409)  # 409: already in that stage
                elif kind == "pipeline":
                    response = http.get("/v1/pipeline")
                    good = response.status_code == 200
                else:
                    response = http.get(f"/v1/deals/{deal}/history", params={"limit": 100})
                    good = response.status_code == 200
                elapsed = time.perf_counter() - started
                with self.lock:
                    if good:
                        self.latencies[kind].append(elapsed * 1000)
                    else:
                        self.errors.append(f"{kind} {response.status_code} {response.text[:200]}")

    def run(self, seconds: float) -> None:
        threads = [
            threading.Thread(target=self.client, args=(n, seconds), daemon=True)
            for n in range(HTTP_CLIENTS)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(seconds + 120)


def http_queries_under_load(bench: Bench, scale: Scale) -> list[Figure]:
    key = f"dl_bench9sales_{secrets.token_urlsafe(30)}"
    settings = bench.settings(
        "s9", kafka_bootstrap=None, api_keys={key: "sales:sam"}, postgres_pool_size=20
    )
    deals = _prepare_deals(settings, HTTP_DEALS)
    say(f"9: opened {len(deals)} deals")
    port = 18000 + random.randrange(1000)
    log = ROOT / ".run" / "logs" / f"bench-{bench.tag}-serve.log"
    server = serve_api(settings, port, log)
    base = f"http://127.0.0.1:{port}"
    results: dict[int, _Load] = {}
    try:
        head = httpx.get(
            f"{base}/v1/pipeline",
            params={"min_position": 2 * HTTP_DEALS},
            headers={"Authorization": f"Bearer {key}"},
            timeout=60,
        )
        if head.status_code != 200:
            raise AssertionError(f"the pipeline was not fed: {head.status_code} {head.text}")

        def measure(rep: int) -> float:
            load = _Load(base, key, deals)
            load.run(scale.http_seconds if rep else min(3.0, scale.http_seconds))
            results[rep] = load
            if load.errors:
                raise AssertionError(f"{len(load.errors)} failed requests: {load.errors[:3]}")
            return percentile(load.latencies["pipeline"], 99)

        def history(rep: int) -> float:
            return percentile(results[rep].latencies["history"], 99)

        pipeline_p99, history_p99 = repeat(
            scale.reps, measure, history, label="9 pipeline queries under load"
        )
    finally:
        stop_api(server)
    last = results[max(results)]
    counts = {kind: len(values) for kind, values in last.latencies.items()}
    p50 = {kind: round(percentile(values, 50), 1) for kind, values in last.latencies.items()}
    return [
        Figure(
            scenario="9",
            name="pipeline_p99_under_load",
            title=f"GET /v1/pipeline p99, {HTTP_CLIENTS} HTTP clients mixing commands and queries",
            unit="ms",
            higher_is_better=False,
            samples=pipeline_p99,
            baseline_title="GET /v1/deals/{id}/history p99, same load",
            baseline_samples=history_p99,
            params={
                "clients": HTTP_CLIENTS,
                "deals": HTTP_DEALS,
                "seconds_per_rep": scale.http_seconds,
                "mode": "PostgreSQL, no Kafka: the API feeds its read models in the background",
                "requests_last_rep": counts,
                "p50_ms_last_rep": p50,
                "at": datetime.now(UTC).isoformat(timespec="seconds"),
            },
        )
    ]
