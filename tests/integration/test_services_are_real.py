"""The services `make test` starts are the real PostgreSQL and Apache Kafka."""

from __future__ import annotations

import time
from typing import Any

import psycopg
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic


def test_postgres_writes_and_reads_a_row(database_url: str, unique_name: str) -> None:
    with psycopg.connect(database_url) as conn:
        version = conn.execute("SHOW server_version").fetchone()
        assert version is not None
        assert int(version[0].split(".")[0]) >= 13
        conn.execute(f"CREATE TABLE {unique_name} (id int PRIMARY KEY, amount numeric NOT NULL)")
        try:
            conn.execute(f"INSERT INTO {unique_name} VALUES (%s, %s)", (1, "12.3400"))
            conn.commit()
            with psycopg.connect(database_url) as other:
                row = other.execute(f"SELECT id, amount::text FROM {unique_name}").fetchone()
            assert row == (1, "12.3400")
        finally:
            conn.rollback()
            conn.execute(f"DROP TABLE {unique_name}")
            conn.commit()


def test_kafka_round_trips_a_keyed_message_with_headers(
    kafka_bootstrap: str, unique_name: str
) -> None:
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        admin.create_topics([NewTopic(unique_name, num_partitions=3, replication_factor=1)])
        assert unique_name in admin.list_topics()

        producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
        sent = producer.send(
            unique_name,
            key=b"deal-42",
            value=b'{"hello": "ledger"}',
            headers=[("ce_type", b"smoke.v1"), ("content-type", b"application/json")],
        ).get(timeout=30)
        producer.close()

        consumer = KafkaConsumer(bootstrap_servers=kafka_bootstrap, enable_auto_commit=False)
        tp = TopicPartition(unique_name, sent.partition)
        consumer.assign([tp])
        consumer.seek(tp, sent.offset)
        records: list[Any] = []
        deadline = time.monotonic() + 30
        while not records and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend(batch)
        consumer.close()

        assert records, "the message produced was never consumed"
        record = records[0]
        assert record.key == b"deal-42"
        assert record.value == b'{"hello": "ledger"}'
        assert dict(record.headers) == {
            "ce_type": b"smoke.v1",
            "content-type": b"application/json",
        }
    finally:
        admin.delete_topics([unique_name])
        admin.close()
