"""`dealledger rebuild`: drop a read model and rebuild it from the beginning, with the
same projector code as live processing — from Kafka, or from the event store when
Kafka is unavailable. The whole rebuild is one transaction: readers see the old
tables until the new ones are complete."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import psycopg
from kafka import KafkaConsumer, TopicPartition

from commands.ledger import DealLedger
from consumers.projector_host import Unprocessable, apply_record
from infra.settings import Settings
from infra.store.positions import ensure_position_tables, store_offset, stored_offsets
from projections.contract.encoding import notification_to_message
from projections.contract.validation import EventContract
from projections.projector import PROJECTIONS, apply_message
from projections.store import ReadStore

Progress = Callable[[int, int], None]


class RebuildError(RuntimeError):
    """The rebuild cannot be done from the chosen source."""


def _reset(store: ReadStore, projections: Sequence[str]) -> None:
    if tuple(projections) == PROJECTIONS:
        store.drop_tables(None)
    else:
        for projection in projections:
            store.drop_tables(projection)
    store.create_tables()


def rebuild_from_kafka(
    settings: Settings,
    projections: Sequence[str],
    log: Any,
    progress: Progress | None = None,
    group_id: str | None = None,
) -> int:
    """Replays the event topic from offset 0 up to where the live projector stands
    (or the topic's end when it has never run), then leaves the group there.

    A record the live projector would dead-letter is skipped and counted (`skipped`
    in the log), never fatal. Returns how many records were read."""
    group_id = group_id or settings.projector_group
    topic = settings.events_topic
    consumer = KafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        enable_auto_commit=False,
        group_id=None,
        max_poll_records=2000,
    )
    conn = psycopg.connect(settings.psycopg_conninfo(), autocommit=True)
    try:
        ensure_position_tables(conn)
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            raise RebuildError(f"topic {topic} does not exist; nothing to rebuild from")
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        beginnings = consumer.beginning_offsets(tps)
        if any(offset > 0 for offset in beginnings.values()):
            raise RebuildError(
                f"{topic} no longer holds its first events (retention); rebuild --from store"
            )
        ends = consumer.end_offsets(tps)
        stored = stored_offsets(conn, group_id, topic)
        target = {tp: (stored.get(tp.partition, 0) if stored else ends[tp]) for tp in tps}
        total = sum(target.values())
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        store = ReadStore(conn, "postgres")
        contract = EventContract()
        done = skipped = 0
        with conn.transaction():
            _reset(store, projections)
            remaining = {tp for tp in tps if target[tp] > 0}
            while remaining:
                for tp, records in consumer.poll(timeout_ms=1000).items():
                    for record in records:
                        if record.offset >= target[tp]:
                            remaining.discard(tp)
                            break
                        try:
                            apply_record(conn, store, contract, record, projections)
                        except Unprocessable as exc:
                            skipped += 1  # the live projector dead-letters it
                            log.warning(
                                "record skipped",
                                partition=record.partition,
                                offset=record.offset,
                                error=exc.reason[:500],
                            )
                        done += 1
                        if record.offset + 1 >= target[tp]:
                            remaining.discard(tp)
                    if progress:
                        progress(done, total)
            for tp in tps:
                store_offset(conn, group_id, topic, tp.partition, target[tp])
        log.info(
            "rebuilt from kafka", projections=list(projections), messages=done, skipped=skipped
        )
        return done
    finally:
        consumer.close()
        conn.close()


def _replay_store(
    store: ReadStore,
    ledger: DealLedger,
    projections: Sequence[str],
    progress: Progress | None,
) -> int:
    """Drops the projections and applies the whole notification log, inside the
    caller's transaction."""
    total = ledger.recorder.max_notification_id() or 0
    done = 0
    _reset(store, projections)
    position = 0
    while True:
        page = ledger.recorder.select_notifications(
            start=position, limit=1000, inclusive_of_start=False
        )
        if not page:
            break
        for notification in page:
            message = notification_to_message(ledger.mapper, notification)
            apply_message(store, message, projections)
        done += len(page)
        position = page[-1].id
        if progress:
            progress(done, total)
    return done


def rebuild_from_store(
    settings: Settings,
    ledger: DealLedger,
    projections: Sequence[str],
    log: Any,
    progress: Progress | None = None,
) -> int:
    """Replays the ledger's notification log. The live projector, resuming from its
    stored offsets later, skips what this applied by (aggregate id, version)."""
    conn = psycopg.connect(settings.psycopg_conninfo(), autocommit=True)
    try:
        store = ReadStore(conn, "postgres")
        with conn.transaction():
            done = _replay_store(store, ledger, projections, progress)
        log.info("rebuilt from event store", projections=list(projections), events=done)
        return done
    finally:
        conn.close()


def rebuild_embedded_from_store(
    settings: Settings,
    ledger: DealLedger,
    projections: Sequence[str],
    log: Any,
    progress: Progress | None = None,
) -> int:
    """The embedded store's SQLite read models (`infra.store.databases.read_model_path`),
    rebuilt in one transaction. The in-process feed keeps its position and skips
    what this applied by (aggregate id, version), as the Kafka projector does."""
    import sqlite3

    from consumers.embedded_feed import ensure_feed_tables
    from infra.store.databases import read_model_path

    path = read_model_path(settings.sqlite_path)
    # Autocommit mode, so that BEGIN below covers the DROP and CREATE statements too:
    # sqlite3's implicit transactions would commit each of them on its own.
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        store = ReadStore(conn, "sqlite")
        ensure_feed_tables(store)
        conn.execute("BEGIN IMMEDIATE")
        try:
            done = _replay_store(store, ledger, projections, progress)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        log.info("rebuilt from event store", projections=list(projections), events=done)
        return done
    finally:
        conn.close()
