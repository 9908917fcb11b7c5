"""Without Kafka, the same projectors are fed in-process from the ledger's
notification log: into SQLite read models (the embedded default) or into the
PostgreSQL ones (the API with a database but no Kafka). Each batch commits in one
transaction with the fed position, exactly as the Kafka consumer does with its
offsets; on PostgreSQL the position row is locked, so processes sharing a database
feed one at a time."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from commands.ledger import DealLedger
from projections.contract.encoding import notification_to_message
from projections.projector import PROJECTIONS, apply_message
from projections.store import ReadStore

FEED_DDL = "CREATE TABLE IF NOT EXISTS feed_positions (name TEXT PRIMARY KEY, position BIGINT)"


@contextmanager
def _transaction(store: ReadStore) -> Iterator[None]:
    # sqlite3's `with conn:` commits; psycopg's would close the connection instead.
    if store.dialect == "postgres":
        with store.connection.transaction():  # type: ignore[attr-defined]
            yield
    else:
        with store.connection:  # type: ignore[attr-defined]
            yield


def ensure_feed_tables(store: ReadStore) -> None:
    """The read-model tables and the fed-position table (idempotent)."""
    if store.dialect == "postgres":
        from infra.store.ddl import serialised_ddl

        with serialised_ddl(store.connection), _transaction(store):  # type: ignore[arg-type]
            store.create_tables()
            store.execute(FEED_DDL)
    else:
        with _transaction(store):
            store.create_tables()
            store.execute(FEED_DDL)


def open_read_store(path: Path) -> tuple[sqlite3.Connection, ReadStore]:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path)
    store = ReadStore(conn, "sqlite")
    ensure_feed_tables(store)
    return conn, store


def feed(
    ledger: DealLedger,
    store: ReadStore,
    *,
    projections: Sequence[str] = PROJECTIONS,
    batch_size: int = 1000,
    name: str = "embedded",
) -> int:
    """Apply every notification after the fed position; returns how many were read."""
    lock = " FOR UPDATE" if store.dialect == "postgres" else ""
    total = 0
    while True:
        with _transaction(store):
            store.execute(
                "INSERT INTO feed_positions (name, position) VALUES (%s, 0) "
                "ON CONFLICT (name) DO NOTHING",
                (name,),
            )
            start = int(
                store.scalar(f"SELECT position FROM feed_positions WHERE name = %s{lock}", (name,))
            )
            notifications = ledger.recorder.select_notifications(
                start=start, limit=batch_size, inclusive_of_start=False
            )
            if not notifications:
                return total
            for notification in notifications:
                apply_message(
                    store, notification_to_message(ledger.mapper, notification), projections
                )
            store.execute(
                "UPDATE feed_positions SET position = %s WHERE name = %s",
                (notifications[-1].id, name),
            )
        total += len(notifications)
