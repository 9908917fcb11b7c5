"""`dealledger project`: runs the read models in a Kafka consumer group.

Each poll's records (of every partition it returned) are applied by the batch engine
(projections.engine) in ONE PostgreSQL transaction together with each partition's
next offset, so a crash never loses or doubles an effect. On (re)assignment the
consumer seeks to the offsets stored in PostgreSQL, not to Kafka's committed offsets
(those are also committed, for monitoring only). Several `dealledger project`
processes in one group share the partitions: an aggregate's events all live in one
partition, and every read-model row is made from one aggregate's events.

Every record is checked against the published contract (projections.contract). A
record that cannot be applied, whatever the exception (a broken contract, a fold
refusing it, a value the database refuses), is left out and dead-lettered, and the
consumer moves on. Only a fault of the infrastructure itself (the database
connection, Kafka) stops the batch, which is then retried from the stored offsets.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

import psycopg
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.errors import KafkaError

from consumers.dead_letters import DeadLetterRefused, DeadLetters, make_dlq_producer
from infra.kafka.admin import ensure_topics
from infra.reconnect import run_until_stopped
from infra.settings import Settings
from infra.store.ddl import serialised_ddl
from infra.store.positions import (
    ensure_position_tables,
    store_offset,
    store_offsets,
    stored_offsets,
)
from projections.contract.models import EventMessage, InvalidMessage, contract
from projections.engine import BatchEngine, BatchOutcome
from projections.read_models import create_tables, projections_named
from projections.store import COPY_FROM, ReadStore

Connection = psycopg.Connection[tuple[object, ...]]
# Faults of the infrastructure (or a dead-letter topic refusing records): the batch is
# retried after a pause; anything else stops the projector.
# Offsets committed to Kafka (for monitoring only) at most this often.
KAFKA_COMMIT_SECONDS = 1.0
_OUTAGES = (KafkaError, psycopg.OperationalError, psycopg.InterfaceError)


def infrastructure_fault(exc: BaseException, conn: Connection) -> bool:
    """Whether `exc` is a fault of the database or Kafka rather than of one record."""
    if isinstance(exc, KafkaError | MemoryError | psycopg.InterfaceError) or conn.broken:
        return True
    if isinstance(exc, psycopg.OperationalError):
        # SQLSTATE class 54 (program limit exceeded, e.g. an index row too large) is
        # raised for a value, not for the server: the record is at fault.
        return not (exc.sqlstate or "").startswith("54")
    return False


def connect_read_side(settings: Settings) -> Connection:
    """A connection for applying records: autocommit (transactions are explicit), and
    asynchronous commit. The read models and the offsets commit in one transaction and
    are derived from Kafka, so a database crash that loses the last few hundred
    milliseconds of commits loses rows and offsets together, and the projector
    applies those records again; meanwhile no commit waits for a disk flush, which is
    a large part of a lone event's latency."""
    conn = psycopg.connect(settings.psycopg_conninfo(), autocommit=True)
    conn.execute("SET synchronous_commit = off")
    return conn


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
        group_id: str | None = None,
        projections: Sequence[str] | None = None,
        max_records: int = 4000,
    ) -> None:
        self.settings = settings
        self.log = log
        self.group_id = group_id or settings.projector_group
        self.projections = projections_named(projections)
        self.max_records = max_records
        self.topic = settings.events_topic
        self.conn = connect_read_side(settings)
        ensure_position_tables(self.conn)
        self.store = ReadStore(self.conn, "postgres")
        with serialised_ddl(self.conn), self.conn.transaction():
            create_tables(self.store, self.projections)
        self.contract = contract()
        self.engine = BatchEngine(
            self.projections,
            is_infrastructure_fault=lambda exc: infrastructure_fault(exc, self.conn),
        )
        self.applied = 0
        self.skipped = 0
        self._consumer: KafkaConsumer | None = None
        self._kafka_committed = 0.0
        self._dlq: KafkaProducer | None = None
        self.dead_letters = DeadLetters(
            self._dlq_producer, settings.events_dlq_topic, self.group_id, log
        )

    @property
    def dead_lettered(self) -> int:
        return self.dead_letters.count

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

    def _dlq_producer(self) -> KafkaProducer:
        if self._dlq is None:
            self._dlq = make_dlq_producer(self.settings.bootstrap_servers)
        return self._dlq

    # -- processing ------------------------------------------------------------

    def process(self, batches: Mapping[TopicPartition, Sequence[Any]]) -> None:
        """Applies one poll's records and each partition's next offset in one transaction."""
        parsed: list[EventMessage] = []
        sources: list[Any] = []
        dead: list[tuple[Any, str]] = []
        for records in batches.values():
            for record in records:
                try:
                    parsed.append(self.contract.parse(record.value, record.headers))
                    sources.append(record)
                except InvalidMessage as exc:
                    dead.append((record, str(exc)))
                except Exception as exc:  # whatever else the record makes the parser do
                    dead.append((record, f"{type(exc).__name__}: {exc}"))
        offsets = {
            tp.partition: records[-1].offset + 1 for tp, records in batches.items() if records
        }
        published: list[Any] = []
        outcome: BatchOutcome | None = None
        if len(parsed) < COPY_FROM:
            try:
                outcome = self._apply_in_two_round_trips(parsed, sources, dead, offsets, published)
            except Exception as exc:
                self._roll_back()
                if infrastructure_fault(exc, self.conn) or not isinstance(exc, psycopg.Error):
                    raise
                # A value the database refuses: find it, one message at a time.
        if outcome is None:
            with self.conn.transaction():
                outcome = self.engine.apply(self.store, parsed)
                self._dead_letter(dead, outcome, sources, published)
                store_offsets(self.conn, self.group_id, self.topic, offsets)
        self.applied += outcome.applied
        self.skipped += outcome.skipped
        self.log.debug(
            "batch applied",
            records=sum(len(r) for r in batches.values()),
            applied=outcome.applied,
            skipped=outcome.skipped,
            dead_lettered=len(published),
        )

    def _apply_in_two_round_trips(
        self,
        parsed: Sequence[EventMessage],
        sources: Sequence[Any],
        dead: list[tuple[Any, str]],
        offsets: Mapping[int, int],
        published: list[Any],
    ) -> BatchOutcome:
        """The common case, a small batch that the database takes whole: the transaction,
        the reads, the writes and the offsets in two round trips, without a savepoint.
        A lone event is applied in about a millisecond of database time this way,
        which is most of the freshness of the read models."""
        with self.store.pipelined():
            self.store.execute("BEGIN")
            outcome = self.engine.apply(self.store, parsed, guarded=False)
            self._dead_letter(dead, outcome, sources, published)
            store_offsets(self.store, self.group_id, self.topic, offsets)
            self.store.execute("COMMIT")
        return outcome

    def _dead_letter(
        self,
        dead: Sequence[tuple[Any, str]],
        outcome: BatchOutcome,
        sources: Sequence[Any],
        published: list[Any],
    ) -> None:
        """Publishes the batch's dead letters not yet published (by an attempt that was
        then rolled back), before the offsets move past them."""
        every = [*dead, *((sources[index], why) for index, why in outcome.refused)]
        fresh = [(record, why) for record, why in every if not any(record is p for p in published)]
        self.dead_letters.publish(fresh, timeout=30)
        published.extend(record for record, _ in fresh)

    def _roll_back(self) -> None:
        if self.conn.broken or self.conn.closed:
            return
        if self.conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            self.conn.execute("ROLLBACK")

    def poll_once(self, timeout_ms: int = 500) -> int:
        if self._consumer is None:
            self._consumer = self._connect()
        batches = self._consumer.poll(timeout_ms=timeout_ms, max_records=self.max_records)
        count = sum(len(records) for records in batches.values())
        if count:
            self.process(batches)
            self._commit_to_kafka()
        return count

    def _commit_to_kafka(self, *, now: bool = False) -> None:
        """Commits the consumed offsets to Kafka too, at most every KAFKA_COMMIT_SECONDS:
        they are for lag monitoring by standard tools; PostgreSQL stays the truth."""
        if self._consumer is None:
            return
        if not now and time.monotonic() - self._kafka_committed < KAFKA_COMMIT_SECONDS:
            return
        self._kafka_committed = time.monotonic()
        try:
            self._consumer.commit_async()
        except KafkaError as exc:
            self.log.debug("offset commit to kafka failed", error=repr(exc))

    def run(self, stop: threading.Event) -> None:
        """Consume until `stop` is set; the batch in hand is always finished first."""
        self.log.info(
            "projector started",
            group_id=self.group_id,
            projections=[p.name for p in self.projections],
        )
        topics_ready = False

        def step() -> None:
            nonlocal topics_ready
            if not topics_ready:
                ensure_topics(self.settings, self.log, [self.topic, self.settings.events_dlq_topic])
                topics_ready = True
            self.poll_once()

        run_until_stopped(step, stop, retry_on=_OUTAGES, on_retry=self._on_outage)
        self.close()
        self.log.info(
            "projector stopped",
            applied=self.applied,
            skipped=self.skipped,
            dead_lettered=self.dead_lettered,
        )

    def _on_outage(self, exc: BaseException, attempt: int, delay: float) -> None:
        if isinstance(exc, DeadLetterRefused):
            # Not an outage: the batch is retried, its offsets unmoved, until it takes them.
            self.log.error("dead-letter topic refuses records; retrying", error=str(exc))
            self._close_consumer()
        elif isinstance(exc, KafkaError):
            self.log.warning("kafka unavailable; reconnecting", error=repr(exc))
            self._close_consumer()
        else:
            # The batch in hand was rolled back; a new consumer re-seeks to the
            # offsets stored in PostgreSQL, so nothing is skipped.
            self.log.warning("database unavailable; reconnecting", error=repr(exc))
            self._close_consumer()
            self._reconnect_database()

    def _reconnect_database(self) -> None:
        try:
            if not self.conn.closed:
                self.conn.close()
            self.conn = connect_read_side(self.settings)
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
        if self._consumer is not None:
            try:  # the monitoring offsets end where the stored ones do
                self._consumer.commit()
            except KafkaError as exc:
                self.log.debug("offset commit to kafka failed", error=repr(exc))
        self._close_consumer()
        if self._dlq is not None:
            try:  # every dead letter was acknowledged before its offset was stored
                self._dlq.close(timeout=5)
            except KafkaError as exc:
                self.log.debug("closing dead-letter producer failed", error=repr(exc))
            self._dlq = None
        if not self.conn.closed:
            self.conn.close()


def reset_to(
    conn: psycopg.Connection[tuple[object, ...]], group_id: str, topic: str, offsets: dict[int, int]
) -> None:
    with conn.transaction():
        for partition, offset in offsets.items():
            store_offset(conn, group_id, topic, partition, offset)
