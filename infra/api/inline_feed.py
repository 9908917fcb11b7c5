"""PostgreSQL without Kafka: the API feeds the read models in-process from the
ledger's notification log, like `consumers.embedded_feed` does for SQLite.

Each batch of events and the fed position commit in one transaction; the position
row is locked (``FOR UPDATE``) so API processes sharing a database feed one at a
time, and duplicates would be skipped by (aggregate id, version) anyway.
"""

from __future__ import annotations

from typing import Any

from commands.ledger import DealLedger
from infra.event_json import notification_to_message
from projections.projector import apply_message
from projections.store import ReadStore

FEED_NAME = "api-inline"
FEED_DDL = "CREATE TABLE IF NOT EXISTS feed_positions (name TEXT PRIMARY KEY, position BIGINT)"


def ensure_feed_table(conn: Any) -> None:
    from infra.ddl import serialised_ddl

    with serialised_ddl(conn), conn.transaction():
        ReadStore(conn, "postgres").create_tables()
        conn.execute(FEED_DDL)
        conn.execute(
            "INSERT INTO feed_positions (name, position) VALUES (%s, 0) "
            "ON CONFLICT (name) DO NOTHING",
            (FEED_NAME,),
        )


def feed_postgres(ledger: DealLedger, conn: Any, *, batch_size: int = 1000) -> int:
    """Applies every notification after the fed position; returns how many were read."""
    store = ReadStore(conn, "postgres")
    total = 0
    while True:
        with conn.transaction():
            row = conn.execute(
                "SELECT position FROM feed_positions WHERE name = %s FOR UPDATE", (FEED_NAME,)
            ).fetchone()
            start = int(row[0]) if row else 0
            notifications = ledger.recorder.select_notifications(
                start=start, limit=batch_size, inclusive_of_start=False
            )
            if not notifications:
                return total
            for notification in notifications:
                apply_message(store, notification_to_message(ledger.mapper, notification))
            conn.execute(
                "UPDATE feed_positions SET position = %s WHERE name = %s",
                (notifications[-1].id, FEED_NAME),
            )
        total += len(notifications)
