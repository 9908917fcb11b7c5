"""Scenarios 4 and 5: the relay into Kafka, and the projection rebuild out of it.

4. `Relay.drain()` over a prepared store (events/s from the event store to Kafka,
   acks=all, idempotent producer, position recorded per batch) vs a raw kafka-python
   producer with the same settings sending the same keys, values and headers.
5. `rebuild_from_kafka` of the pipeline + attribution read models from offset 0
   (events/s) vs raw batched INSERTs of the rows that rebuild leaves behind.
"""

from __future__ import annotations

import time
from typing import Any

import psycopg
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from consumers.rebuild import rebuild_from_kafka
from infra.bootstrap import build_ledger
from infra.kafka.relay import Relay, producer_settings
from infra.settings import Settings
from infra.store.positions import store_offset
from projections.contract.encoding import Encoder
from projections.read_models import projections_named
from projections.store import POSITION_TABLE
from tests.benchmarks.bench_common import LOG, Bench, Figure, Scale, repeat, say
from tests.benchmarks.bench_data import Record, prepare_store

REBUILT = ("pipeline", "attribution")


def _records(ledger: Any) -> list[Record]:
    """The stored events as the relay publishes them: key, value, headers."""
    records: list[Record] = []
    position = 0
    while True:
        page = ledger.recorder.select_notifications(
            start=position, limit=1000, inclusive_of_start=False
        )
        if not page:
            return records
        encoder = Encoder(ledger.mapper)
        for notification in page:
            event = encoder.encode(notification)
            records.append((event.key, event.value, event.headers))
        position = page[-1].id


def relay_throughput(bench: Bench, scale: Scale) -> list[Figure]:
    settings = bench.settings("s4")
    ledger = build_ledger(settings)
    try:
        stored = prepare_store(ledger, scale.relay_events)
        say(f"4: prepared a store of {stored:,} events")
        records = _records(ledger)
        value_bytes = sum(len(r[1]) for r in records) // len(records)

        def on_topic(suffix: str) -> Settings:
            topic = bench.topic("s4", suffix)
            topic_settings = settings.model_copy(update={"events_topic": topic})
            bench.create_topics(topic_settings, topic)
            return topic_settings

        def relay_rate(rep: int) -> float:
            topic_settings = on_topic(f"relay{rep}")
            relay = Relay(ledger, topic_settings, LOG, relay_name=f"bench-{rep}")
            try:
                relay._producer_or_connect()  # connecting is not what we measure
                start = time.perf_counter()
                status = relay.drain(timeout=600)
                elapsed = time.perf_counter() - start
            finally:
                relay.close()
            if status.lag or status.published != status.head:
                raise AssertionError(f"relay stopped short: {status}")
            return stored / elapsed

        def raw_rate(rep: int) -> float:
            topic_settings = on_topic(f"raw{rep}")
            # Plain kafka-python with the relay's settings (its key-hash cache is ours).
            producer = KafkaProducer(**producer_settings(topic_settings))
            try:
                start = time.perf_counter()
                futures = [
                    producer.send(
                        topic_settings.events_topic, key=key, value=value, headers=headers
                    )
                    for key, value, headers in records
                ]
                producer.flush(timeout=600)
                for future in futures:
                    future.get(timeout=0)
                elapsed = time.perf_counter() - start
            finally:
                producer.close(timeout=10)
            return len(records) / elapsed

        rates, raw = repeat(scale.reps, relay_rate, raw_rate, label="4 relay")
    finally:
        ledger.close()
    return [
        Figure(
            scenario="4",
            name="relay_throughput",
            title="relay events/s, event store to Kafka (Relay.drain, batches of 1,000)",
            unit="events/s",
            higher_is_better=True,
            samples=rates,
            baseline_title="raw kafka-python producer, same records, acks=all",
            baseline_samples=raw,
            params={
                "events": stored,
                "mean_value_bytes": value_bytes,
                "partitions": settings.topic_partitions,
                "acks": "all",
                "idempotent": True,
            },
        )
    ]


def projection_rebuild(bench: Bench, scale: Scale) -> list[Figure]:
    settings = bench.settings("s5")
    ledger = build_ledger(settings)
    try:
        stored = prepare_store(ledger, scale.rebuild_events)
        bench.create_topics(settings, settings.events_topic)
        relay = Relay(ledger, settings, LOG)
        try:
            status = relay.drain(timeout=600)
        finally:
            relay.close()
        if status.lag:
            raise AssertionError(f"could not publish the prepared store: {status}")
        say(f"5: published a store of {stored:,} events")
    finally:
        ledger.close()
    conninfo = settings.psycopg_conninfo()
    tables = [t for p in projections_named(REBUILT) for t in p.all_tables]
    row_counts: dict[str, int] = {}

    def rebuild_rate(rep: int) -> float:
        start = time.perf_counter()
        done = rebuild_from_kafka(settings, REBUILT, LOG, group_id=f"bench-rebuild-{rep}")
        elapsed = time.perf_counter() - start
        if done != stored:
            raise AssertionError(f"rebuilt {done} events, not {stored}")
        return done / elapsed

    def raw_rate(rep: int) -> float:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            rows: dict[str, list[tuple[Any, ...]]] = {}
            for table in tables:
                rows[table.name] = conn.execute(f"SELECT * FROM {table.name}").fetchall()
            rows[POSITION_TABLE] = conn.execute(
                f"SELECT * FROM {POSITION_TABLE} WHERE projection = ANY(%s)", (list(REBUILT),)
            ).fetchall()
            for name in rows:
                conn.execute(f"CREATE TABLE IF NOT EXISTS raw_{name} (LIKE {name} INCLUDING ALL)")
                conn.execute(f"TRUNCATE raw_{name}")
                row_counts[name] = len(rows[name])
            start = time.perf_counter()
            with conn.transaction(), conn.cursor() as cursor:
                for name, table_rows in rows.items():
                    if not table_rows:
                        continue
                    marks = ", ".join(["%s"] * len(table_rows[0]))
                    sql = f"INSERT INTO raw_{name} VALUES ({marks})"
                    for first in range(0, len(table_rows), 1000):
                        cursor.executemany(sql, table_rows[first : first + 1000])
            elapsed = time.perf_counter() - start
        return stored / elapsed

    rates, raw = repeat(scale.reps, rebuild_rate, raw_rate, label="5 projection rebuild")
    half_events, half_rate = _rebuild_half(settings)
    say(f"5: rebuilding half the topic ({half_events:,} events): {half_rate:.0f} events/s")
    return [
        Figure(
            scenario="5",
            name="projection_rebuild",
            title="rebuild events/s, pipeline + attribution from Kafka offset 0",
            unit="events/s",
            higher_is_better=True,
            samples=rates,
            baseline_title="raw batched INSERTs of the same rows (events / time)",
            baseline_samples=raw,
            params={
                "events": stored,
                "projections": list(REBUILT),
                "rows": row_counts,
                "insert_batch": 1000,
                "half_topic": {"events": half_events, "events_per_s": round(half_rate, 1)},
            },
            note=f"{half_rate:.0f} events/s rebuilding the first {half_events:,} events",
        )
    ]


def _rebuild_half(settings: Settings) -> tuple[int, float]:
    """One rebuild of the first half of every partition (a consumer group whose stored
    offsets stand half-way), to show how the rate depends on the topic's length."""
    topic = settings.events_topic
    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap_servers)
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        ends = consumer.end_offsets(tps)
    finally:
        consumer.close()
    group = "bench-rebuild-half"
    with psycopg.connect(settings.psycopg_conninfo(), autocommit=True) as conn:
        for tp in tps:
            store_offset(conn, group, topic, tp.partition, ends[tp] // 2)
    start = time.perf_counter()
    done = rebuild_from_kafka(settings, REBUILT, LOG, group_id=group)
    return done, done / (time.perf_counter() - start)
