"""`dealledger rebuild`: build read models again from the beginning, without downtime.

The rebuild writes into shadow tables (`<table>__rebuild`) with the same batch engine
as live processing, page by page (bounded memory, one transaction per page), from
Kafka offset 0 or from the event store. Queries and the live projector keep using
the live tables meanwhile. At the end one transaction locks the live tables (the live
projector pauses), applies what arrived since, and swaps the shadow tables in; then
everyone reads and writes the rebuilt tables. So a rebuild may run while
`dealledger project` runs.

Where the rebuild stops: from Kafka, at the offsets the live consumer group has
stored (read under lock during the swap), or at the topic's end when the group has
never run (the group then starts there); from the store, at the ledger head. Either
way the live projector goes on exactly where it was, and any event it sees again is
skipped by (aggregate id, version).
"""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
from collections.abc import Callable, Sequence
from queue import Empty
from typing import Any, cast
from uuid import UUID

import psycopg
from kafka import KafkaConsumer, TopicPartition

from commands.ledger import DealLedger
from consumers.projector_host import infrastructure_fault
from infra.settings import Settings
from infra.store.ddl import serialised_ddl
from infra.store.positions import ensure_position_tables, store_offset, stored_offsets
from projections.contract.encoding import Encoder
from projections.contract.models import EventMessage, InvalidMessage, contract
from projections.engine import BatchEngine, Projection
from projections.read_models import projections_named, tables_of
from projections.store import POSITIONS, ReadStore, Table

Progress = Callable[[int, int], None]


class _QueueLog:
    """The log of a worker process: its warnings go to the parent through its queue."""

    def __init__(self, queue: Any) -> None:
        self.queue = queue

    def warning(self, event: str, **fields: Any) -> None:
        self.queue.put(("log", (event, fields)))


SHADOW = "__rebuild"
PAGE = 5000


class RebuildError(RuntimeError):
    """The rebuild cannot be done from the chosen source."""


def shadow(name: str) -> str:
    return f"{name}{SHADOW}"


class _Shadow:
    """The shadow tables of some projections in one database, and the swap."""

    def __init__(self, store: ReadStore, projections: Sequence[Projection]) -> None:
        self.store = store
        self.projections = tuple(projections)
        self.tables: tuple[Table, ...] = tables_of(self.projections)
        self.engine = BatchEngine(
            self.projections,
            naming=shadow,
            is_infrastructure_fault=lambda exc: (
                store.dialect == "postgres" and infrastructure_fault(exc, store.connection)  # type: ignore[arg-type]
            ),
        )
        self.skipped = 0

    def prepare(self) -> None:
        """Fresh, empty shadow tables (a rebuild that died left old ones behind), with
        their primary keys only: the secondary indexes are built once the bulk is in
        (`index`), which is cheaper than keeping them up to date row by row."""
        shadows = [t.named(shadow(t.name)) for t in self.tables]
        self.store.drop_tables(shadows)
        for table in shadows:
            self.store.execute(table.create_sql()[0])
        self.store.create_tables(self.tables)  # the live ones, if this database is new

    def index(self) -> None:
        for table in self.tables:
            for statement in table.named(shadow(table.name)).create_sql()[1:]:
                self.store.execute(statement)

    def apply(self, messages: Sequence[EventMessage], log: Any) -> None:
        outcome = self.engine.apply(self.store, messages)
        for index, why in outcome.refused:
            self.skipped += 1  # the live projector dead-letters it
            log.warning("record skipped", position=messages[index].position, error=why[:500])

    def swap(self) -> None:
        """Inside the caller's transaction: the shadow tables become the live ones."""
        store = self.store
        live = [t for t in self.tables if t.name != POSITIONS.name]
        if store.dialect == "postgres":
            store.execute(f"LOCK TABLE {', '.join(t.name for t in live)} IN ACCESS EXCLUSIVE MODE")
        for table in live:
            store.execute(f"DROP TABLE IF EXISTS {table.name}")
            store.rename_table(shadow(table.name), table.name)
            if store.dialect == "sqlite":
                _rename_sqlite_indexes(store, table)
        names = [p.name for p in self.projections]
        rows = store.fetchall(
            f"SELECT projection, position FROM {shadow(POSITIONS.name)} "
            f"WHERE projection IN ({', '.join(['%s'] * len(names))})",
            names,
        )
        store.execute(
            f"DELETE FROM {POSITIONS.name} WHERE projection IN ({', '.join(['%s'] * len(names))})",
            names,
        )
        store.insert_rows(POSITIONS.name, ("projection", "position"), rows)
        store.execute(f"DROP TABLE {shadow(POSITIONS.name)}")


def _rename_sqlite_indexes(store: ReadStore, table: Table) -> None:
    """SQLite cannot rename an index: the shadow's go, and the live names are made."""
    for columns in table.indexes:
        store.execute(f"DROP INDEX IF EXISTS {shadow(table.name)}_by_{'_'.join(columns)}")
    for statement in table.create_sql()[1:]:
        store.execute(statement)


def _parsed(records: Sequence[Any], log: Any, counts: dict[str, int]) -> list[EventMessage]:
    messages = []
    for record in records:
        try:
            messages.append(contract().parse(record.value, record.headers))
        except (InvalidMessage, ValueError) as exc:
            counts["skipped"] += 1  # the live projector dead-letters it
            log.warning(
                "record skipped", partition=record.partition, offset=record.offset, error=str(exc)
            )
    return messages


def _consume(
    consumer: KafkaConsumer,
    position: dict[TopicPartition, int],
    until: dict[TopicPartition, int],
    apply_page: Callable[[list[Any]], None],
) -> None:
    """Hands records up to `until` (exclusive) per partition to `apply_page`, a poll's
    worth at a time; records fetched beyond `until` are sought back to."""
    while any(position[tp] < until[tp] for tp in position):
        page: list[Any] = []
        for tp, records in consumer.poll(timeout_ms=1000).items():
            for record in records:
                if record.offset >= until[tp]:
                    break
                page.append(record)
                position[tp] = record.offset + 1
            if records and records[-1].offset + 1 > position[tp]:
                consumer.seek(tp, position[tp])
        apply_page(page)


def _kafka_consumer(settings: Settings) -> KafkaConsumer:
    return KafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        enable_auto_commit=False,
        group_id=None,
        max_poll_records=PAGE,
        fetch_max_bytes=64 * 1024 * 1024,
        max_partition_fetch_bytes=8 * 1024 * 1024,
    )


def _kafka_share(
    settings: Settings,
    names: Sequence[str],
    until: dict[TopicPartition, int],
    report: Any,
) -> None:
    """A worker process of a parallel rebuild: its partitions from offset 0 to `until`,
    into the shadow tables, a transaction per page; it reports each page's count."""
    conn = psycopg.connect(settings.psycopg_conninfo(), autocommit=True)
    consumer = _kafka_consumer(settings)
    try:
        target_of = _Shadow(ReadStore(conn, "postgres"), projections_named(names))
        counts = {"done": 0, "skipped": 0}
        consumer.assign(list(until))
        consumer.seek_to_beginning(*until)
        log = _QueueLog(report)

        def apply_page(page: list[Any]) -> None:
            with conn.transaction():
                target_of.apply(_parsed(page, log, counts), log)
            report.put(("page", len(page)))

        _consume(consumer, dict.fromkeys(until, 0), until, apply_page)
        report.put(("done", counts["skipped"] + target_of.skipped))
    finally:
        consumer.close()
        conn.close()


def _in_parallel(
    work: Callable[..., None],
    shares: Sequence[tuple[Any, ...]],
    progress: Callable[[int], None],
    log: Any,
) -> int:
    """Runs `work(*share, queue)` in one process per share (forked, so each starts
    with what this process has built); returns the records they skipped. Any worker
    failing fails the rebuild."""
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    processes = [
        context.Process(target=work, args=(*share, queue), daemon=True) for share in shares
    ]
    for process in processes:
        process.start()
    finished = skipped = 0
    try:
        while finished < len(processes):
            try:
                kind, value = queue.get(timeout=0.5)
            except Empty:
                broken = [p for p in processes if p.exitcode not in (None, 0)]
                if broken:
                    raise RebuildError(
                        f"a rebuild worker failed (exit code {broken[0].exitcode})"
                    ) from None
                continue
            if kind == "page":
                progress(value)
            elif kind == "log":
                event, fields = value
                log.warning(event, **fields)
            else:
                finished += 1
                skipped += value
    finally:
        for process in processes:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
    return skipped


def rebuild_from_kafka(
    settings: Settings,
    projections: Sequence[str] | None,
    log: Any,
    progress: Progress | None = None,
    group_id: str | None = None,
    workers: int | None = None,
) -> int:
    """Replays the event topic from offset 0 into shadow tables and swaps them in (see
    the module docstring). The bulk of it runs in `workers` processes (default: one
    per CPU), each taking a share of the partitions: an aggregate's events all live
    in one partition, so the shares never touch the same rows. A record the live
    projector would dead-letter is skipped and counted (`skipped` in the log), never
    fatal. Returns how many records were read."""
    group_id = group_id or settings.projector_group
    topic = settings.events_topic
    chosen = projections_named(projections)
    consumer = _kafka_consumer(settings)
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
        fresh_group = not stored
        target = {tp: stored.get(tp.partition, 0) if stored else ends[tp] for tp in tps}
        store = ReadStore(conn, "postgres")
        target_of = _Shadow(store, chosen)
        with serialised_ddl(conn), conn.transaction():
            target_of.prepare()
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        counts = {"done": 0, "skipped": 0}
        position = dict.fromkeys(tps, 0)

        def advanced(count: int) -> None:
            counts["done"] += count
            if progress:
                progress(counts["done"], max(counts["done"], sum(target.values())))

        def apply_page(page: list[Any]) -> None:
            with conn.transaction():
                target_of.apply(_parsed(page, log, counts), log)
            advanced(len(page))

        def consume(until: dict[TopicPartition, int]) -> None:
            _consume(consumer, position, until, apply_page)

        # The bulk, in parallel when it pays; then up to where the live group stands
        # now; then, under lock, the last stretch.
        shares = _shares([tp for tp in tps if target[tp] > 0], workers)
        if len(shares) > 1 and sum(target.values()) >= 2 * PAGE:
            contract()  # built before the fork: every worker starts with it
            counts["skipped"] += _in_parallel(
                _kafka_share,
                [(settings, [p.name for p in chosen], {tp: target[tp] for tp in share})
                 for share in shares],
                advanced,
                log,
            )  # fmt: skip
            for tp in tps:
                position[tp] = target[tp]
                consumer.seek(tp, target[tp])
        else:
            consume(target)
        with conn.transaction():
            target_of.index()
        if not fresh_group:
            target = _targets(tps, stored_offsets(conn, group_id, topic))
            consume(target)
        with conn.transaction():
            if store.dialect == "postgres":
                live = [t.name for t in target_of.tables if t.name != POSITIONS.name]
                store.execute(f"LOCK TABLE {', '.join(live)} IN ACCESS EXCLUSIVE MODE")
            if not fresh_group:
                locked = conn.execute(
                    "SELECT partition, next_offset FROM consumer_offsets "
                    "WHERE group_id = %s AND topic = %s FOR UPDATE",
                    (group_id, topic),
                ).fetchall()
                target = _targets(tps, {int(str(p)): int(str(o)) for p, o in locked})
                consume_locked(target, consumer, tps, position, target_of, log, counts)
            target_of.swap()
            if fresh_group:
                for tp in tps:
                    store_offset(conn, group_id, topic, tp.partition, target[tp])
        log.info(
            "rebuilt from kafka",
            projections=[p.name for p in chosen],
            messages=counts["done"],
            skipped=counts["skipped"] + target_of.skipped,
        )
        return counts["done"]
    finally:
        consumer.close()
        conn.close()


def _shares(tps: Sequence[TopicPartition], workers: int | None) -> list[list[TopicPartition]]:
    """The partitions dealt out to the workers, round robin."""
    count = max(1, min(workers or os.cpu_count() or 1, len(tps)))
    return [list(tps[n::count]) for n in range(count) if tps[n::count]]


def _targets(tps: Sequence[TopicPartition], offsets: dict[int, int]) -> dict[TopicPartition, int]:
    return {tp: offsets.get(tp.partition, 0) for tp in tps}


def consume_locked(
    until: dict[TopicPartition, int],
    consumer: KafkaConsumer,
    tps: Sequence[TopicPartition],
    position: dict[TopicPartition, int],
    target_of: _Shadow,
    log: Any,
    counts: dict[str, int],
) -> None:
    """The last stretch, inside the swap's transaction (no transaction of its own)."""
    while any(position[tp] < until[tp] for tp in tps):
        page: list[Any] = []
        for tp, records in consumer.poll(timeout_ms=1000).items():
            for record in records:
                if record.offset >= until[tp]:
                    break
                page.append(record)
                position[tp] = record.offset + 1
        target_of.apply(_parsed(page, log, counts), log)
        counts["done"] += len(page)


def _replay_store(
    target_of: _Shadow,
    ledger: DealLedger,
    start: int,
    stop: int | None,
    log: Any,
    progress: Progress | None,
    done: int,
    in_transaction: Callable[[], Any],
) -> tuple[int, int]:
    """Applies notifications after `start` (up to `stop`) in pages; returns the last
    position applied and the running count."""
    encoder = Encoder(ledger.mapper)
    total = ledger.recorder.max_notification_id() or 0
    position = start
    while True:
        page = ledger.recorder.select_notifications(
            start=position, limit=PAGE, stop=stop, inclusive_of_start=False
        )
        if not page:
            return position, done
        with in_transaction():
            target_of.apply([encoder.message(n) for n in page], log)
        done += len(page)
        position = page[-1].id
        if progress:
            progress(done, max(done, total))


def _store_share(
    settings: Settings, names: Sequence[str], stop: int, share: int, shares: int, report: Any
) -> None:
    """A worker process of a parallel rebuild from the store: the aggregates whose id
    falls to `share` (of `shares`), up to position `stop`; it reports each page."""
    from infra.bootstrap import build_ledger

    ledger = build_ledger(settings)  # its own: a pool does not survive a fork
    conn = psycopg.connect(settings.psycopg_conninfo(), autocommit=True)
    try:
        target_of = _Shadow(ReadStore(conn, "postgres"), projections_named(names))
        encoder = Encoder(ledger.mapper)
        log = _QueueLog(report)
        position = 0
        while True:
            page = ledger.recorder.select_notifications(
                start=position, limit=PAGE, stop=stop, inclusive_of_start=False
            )
            if not page:
                break
            mine = [n for n in page if cast(UUID, n.originator_id).int % shares == share]
            with conn.transaction():
                target_of.apply([encoder.message(n) for n in mine], log)
            position = page[-1].id
            report.put(("page", len(mine)))
        report.put(("done", target_of.skipped))
    finally:
        conn.close()
        ledger.close()


def rebuild_from_store(
    settings: Settings,
    ledger: DealLedger,
    projections: Sequence[str] | None,
    log: Any,
    progress: Progress | None = None,
    workers: int | None = None,
) -> int:
    """Replays the ledger's notification log into shadow tables and swaps them in,
    having applied, under lock, everything up to the ledger head at that moment. The
    bulk runs in `workers` processes (default: one per CPU), each taking the
    aggregates whose id falls to it, so they never touch the same rows."""
    chosen = projections_named(projections)
    conn = psycopg.connect(settings.psycopg_conninfo(), autocommit=True)
    try:
        store = ReadStore(conn, "postgres")
        target_of = _Shadow(store, chosen)
        with serialised_ddl(conn), conn.transaction():
            target_of.prepare()
        head = ledger.recorder.max_notification_id() or 0
        shares = max(1, workers or os.cpu_count() or 1)
        if shares > 1 and head >= 2 * PAGE:
            contract()  # built before the fork: every worker starts with it
            counts = {"done": 0}

            def advanced(count: int) -> None:
                counts["done"] += count
                if progress:
                    progress(counts["done"], max(counts["done"], head))

            target_of.skipped += _in_parallel(
                _store_share,
                [(settings, [p.name for p in chosen], head, n, shares) for n in range(shares)],
                advanced,
                log,
            )
            position, done = head, counts["done"]
        else:
            position, done = _replay_store(
                target_of, ledger, 0, None, log, progress, 0, conn.transaction
            )
        with conn.transaction():
            target_of.index()
        with conn.transaction():
            live = [t.name for t in target_of.tables if t.name != POSITIONS.name]
            store.execute(f"LOCK TABLE {', '.join(live)} IN ACCESS EXCLUSIVE MODE")
            _, done = _replay_store(
                target_of, ledger, position, None, log, progress, done, _no_transaction
            )
            target_of.swap()
        log.info(
            "rebuilt from event store",
            projections=[p.name for p in chosen],
            events=done,
            skipped=target_of.skipped,
        )
        return done
    finally:
        conn.close()


def rebuild_embedded_from_store(
    settings: Settings,
    ledger: DealLedger,
    projections: Sequence[str] | None,
    log: Any,
    progress: Progress | None = None,
) -> int:
    """The embedded store's SQLite read models (`infra.store.databases.read_model_path`),
    rebuilt into shadow tables and swapped in. The in-process feed keeps its position
    (it is never ahead of the ledger head the rebuild reached) and skips what the
    rebuild applied by (aggregate id, version), as the Kafka projector does."""
    from consumers.embedded_feed import ensure_feed_tables
    from infra.store.databases import read_model_path

    chosen = projections_named(projections)
    path = read_model_path(settings.sqlite_path)
    # Autocommit mode, so that BEGIN below covers DDL too: sqlite3's implicit
    # transactions would commit each DROP and CREATE on its own.
    conn = sqlite3.connect(path, isolation_level=None, timeout=30)
    try:
        store = ReadStore(conn, "sqlite")
        ensure_feed_tables(store)
        target_of = _Shadow(store, chosen)
        with _sqlite_transaction(conn):
            target_of.prepare()
        position, done = _replay_store(
            target_of, ledger, 0, None, log, progress, 0, lambda: _sqlite_transaction(conn)
        )
        with _sqlite_transaction(conn, immediate=True):
            _, done = _replay_store(
                target_of, ledger, position, None, log, progress, done, _no_transaction
            )
            target_of.swap()
        log.info(
            "rebuilt from event store",
            projections=[p.name for p in chosen],
            events=done,
            skipped=target_of.skipped,
        )
        return done
    finally:
        conn.close()


class _no_transaction:  # noqa: N801 - used like a context manager factory
    def __enter__(self) -> None:
        return None

    def __exit__(self, *_: object) -> None:
        return None


class _sqlite_transaction:  # noqa: N801 - used like a context manager factory
    def __init__(self, conn: sqlite3.Connection, *, immediate: bool = False) -> None:
        self.conn = conn
        self.begin = "BEGIN IMMEDIATE" if immediate else "BEGIN"

    def __enter__(self) -> None:
        self.conn.execute(self.begin)

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        self.conn.execute("COMMIT" if kind is None else "ROLLBACK")
