"""`dealledger project`: runs the projectors in a Kafka consumer group.

Each poll batch of one partition is applied in ONE PostgreSQL transaction together
with that partition's next offset, so a crash never loses or doubles an effect.
On (re)assignment the consumer seeks to the offsets stored in PostgreSQL, not to
Kafka's committed offsets (those are also committed, for monitoring only).
Undecodable or schema-invalid messages go to the dead-letter topic and the
consumer moves on.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import psycopg
from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.errors import KafkaError

from consumers.dead_letters import dead_letter_headers, make_dlq_producer
from infra.ddl import serialised_ddl
from infra.kafka_admin import ensure_topics
from infra.positions import ensure_position_tables, store_offset, stored_offsets
from infra.settings import Settings
from projections.message import InvalidMessage, parse_message
from projections.projector import PROJECTIONS, apply_message
from projections.store import ReadStore

GROUP_ID = "dealledger-projectors"


class _SeekToStoredOffsets(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, host: ProjectorHost) -> None:
        self.host = host

    def on_partitions_revoked(self, revoked: Sequence[TopicPartition]) -> None:
        self.host.log.info("partitions revoked", partitions=sorted(tp.partition for tp in revoked))

    def on_partitions_assigned(self, assigned: Sequence[TopicPartition]) -> None:
        self.host.seek_to_stored(list(assigned))


class ProjectorHost:
    def __init__(
        self,
        settings: Settings,
        log: Any,
        *,
        group_id: str = GROUP_ID,
        projections: Sequence[str] = PROJECTIONS,
        max_records: int = 500,
    ) -> None:
        self.settings = settings
        self.log = log
        self.group_id = group_id
        self.projections = tuple(projections)
        self.max_records = max_records
        self.topic = settings.events_topic
        self.conn = psycopg.connect(settings.psycopg_conninfo(), autocommit=True)
        ensure_position_tables(self.conn)
        self.store = ReadStore(self.conn, "postgres")
        with serialised_ddl(self.conn), self.conn.transaction():
            self.store.create_tables()
        self.applied = 0
        self.skipped = 0
        self.dead_lettered = 0
        self._consumer: KafkaConsumer | None = None
        self._dlq: Any = None

    # -- Kafka plumbing ----------------------------------------------------------

    def _connect(self) -> KafkaConsumer:
        consumer = KafkaConsumer(
            bootstrap_servers=self.settings.bootstrap_servers,
            group_id=self.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=self.max_records,
            session_timeout_ms=10000,
            heartbeat_interval_ms=3000,
        )
        consumer.subscribe([self.topic], listener=_SeekToStoredOffsets(self))
        return consumer

    def seek_to_stored(self, partitions: list[TopicPartition]) -> None:
        assert self._consumer is not None
        offsets = stored_offsets(self.conn, self.group_id, self.topic)
        for tp in partitions:
            if tp.partition in offsets:
                self._consumer.seek(tp, offsets[tp.partition])
            else:
                self._consumer.seek_to_beginning(tp)
        self.log.info(
            "partitions assigned",
            partitions={tp.partition: offsets.get(tp.partition, 0) for tp in partitions},
        )

    def _dead_letter(self, record: Any, error: str) -> None:
        if self._dlq is None:
            self._dlq = make_dlq_producer(self.settings.bootstrap_servers)
        self._dlq.send(
            self.settings.events_dlq_topic,
            key=record.key,
            value=record.value,
            headers=dead_letter_headers(record, error, self.group_id),
        )
        self.dead_lettered += 1
        self.log.warning(
            "message dead-lettered",
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            aggregate_id=(record.key or b"").decode("utf-8", "replace"),
            error=error,
        )

    # -- processing ------------------------------------------------------------

    def process(self, tp: TopicPartition, records: list[Any]) -> None:
        """Apply one partition's batch and its next offset in one transaction."""
        dead: list[tuple[Any, str]] = []
        with self.conn.transaction():
            for record in records:
                try:
                    message = parse_message(record.value)
                    with self.conn.transaction():  # savepoint: a bad message undoes only itself
                        applied = apply_message(self.store, message, self.projections)
                except InvalidMessage as exc:
                    dead.append((record, str(exc)))
                    continue
                if applied:
                    self.applied += 1
                else:
                    self.skipped += 1
                    self.log.debug(
                        "duplicate skipped",
                        topic=record.topic,
                        partition=record.partition,
                        offset=record.offset,
                        aggregate_id=str(message.aggregate_id),
                        version=message.aggregate_version,
                    )
            if dead:
                # Dead letters are acknowledged before the offsets move past them.
                for record, error in dead:
                    self._dead_letter(record, error)
                self._dlq.flush(timeout=30)
            store_offset(self.conn, self.group_id, tp.topic, tp.partition, records[-1].offset + 1)
        self.log.debug(
            "batch applied",
            topic=tp.topic,
            partition=tp.partition,
            first_offset=records[0].offset,
            last_offset=records[-1].offset,
        )

    def poll_once(self, timeout_ms: int = 500) -> int:
        if self._consumer is None:
            self._consumer = self._connect()
        batches = self._consumer.poll(timeout_ms=timeout_ms, max_records=self.max_records)
        count = 0
        for tp, records in batches.items():
            if records:
                self.process(tp, records)
                count += len(records)
        if count:
            try:  # for lag monitoring by standard tools; PostgreSQL stays the truth
                self._consumer.commit_async()
            except KafkaError as exc:
                self.log.debug("offset commit to kafka failed", error=repr(exc))
        return count

    def run(self, stop: threading.Event) -> None:
        """Consume until `stop` is set; the batch in hand is always finished first."""
        self.log.info("projector started", group_id=self.group_id, projections=self.projections)
        topics_ready = False
        while not stop.is_set():
            try:
                if not topics_ready:
                    ensure_topics(
                        self.settings, self.log, [self.topic, self.settings.events_dlq_topic]
                    )
                    topics_ready = True
                self.poll_once()
            except KafkaError as exc:
                self.log.warning("kafka unavailable; reconnecting", error=repr(exc))
                self._close_consumer()
                stop.wait(1.0)
            except psycopg.OperationalError as exc:
                # The batch in hand was rolled back; a new consumer re-seeks to the
                # offsets stored in PostgreSQL, so nothing is skipped.
                self.log.warning("database unavailable; reconnecting", error=repr(exc))
                self._close_consumer()
                stop.wait(1.0)
                self._reconnect_database()
        self.close()
        self.log.info(
            "projector stopped",
            applied=self.applied,
            skipped=self.skipped,
            dead_lettered=self.dead_lettered,
        )

    def _reconnect_database(self) -> None:
        try:
            if not self.conn.closed:
                self.conn.close()
            self.conn = psycopg.connect(self.settings.psycopg_conninfo(), autocommit=True)
            self.store = ReadStore(self.conn, "postgres")
        except psycopg.OperationalError as exc:
            self.log.warning("database still unavailable", error=repr(exc))

    def lag(self) -> dict[int, int]:
        """Per partition: messages on the topic not yet applied (end offset - stored)."""
        consumer = KafkaConsumer(bootstrap_servers=self.settings.bootstrap_servers)
        try:
            partitions = consumer.partitions_for_topic(self.topic) or set()
            tps = [TopicPartition(self.topic, p) for p in sorted(partitions)]
            ends = consumer.end_offsets(tps)
        finally:
            consumer.close()
        stored = stored_offsets(self.conn, self.group_id, self.topic)
        return {tp.partition: ends[tp] - stored.get(tp.partition, 0) for tp in tps}

    def _close_consumer(self) -> None:
        if self._consumer is not None:
            try:
                self._consumer.close(autocommit=False)
            except Exception as exc:  # closing a consumer of a dead broker may fail
                self.log.debug("closing consumer failed", error=repr(exc))
            self._consumer = None

    def close(self) -> None:
        self._close_consumer()
        if self._dlq is not None:
            self._dlq.flush(timeout=10)
            self._dlq.close(timeout=5)
            self._dlq = None
        if not self.conn.closed:
            self.conn.close()


def reset_to(
    conn: psycopg.Connection[tuple[object, ...]], group_id: str, topic: str, offsets: dict[int, int]
) -> None:
    with conn.transaction():
        for partition, offset in offsets.items():
            store_offset(conn, group_id, topic, partition, offset)
