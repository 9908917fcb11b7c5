"""Embedded mode: without Kafka, the same projectors are fed in-process from the
ledger's notification log into SQLite read models, one transaction per batch with
the fed position, exactly as the Kafka consumer does with its offsets."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

from commands.ledger import DealLedger
from infra.event_json import notification_to_message
from projections.projector import PROJECTIONS, apply_message
from projections.store import ReadStore

FEED_DDL = "CREATE TABLE IF NOT EXISTS feed_positions (name TEXT PRIMARY KEY, position INTEGER)"


def read_model_path(event_store_path: Path) -> Path:
    return event_store_path.with_name(f"{event_store_path.stem}-read-models.sqlite")


def open_read_store(path: Path) -> tuple[sqlite3.Connection, ReadStore]:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path)
    store = ReadStore(conn, "sqlite")
    with conn:
        store.create_tables()
        conn.execute(FEED_DDL)
    return conn, store


def feed(
    ledger: DealLedger,
    conn: sqlite3.Connection,
    store: ReadStore,
    *,
    projections: Sequence[str] = PROJECTIONS,
    batch_size: int = 1000,
    name: str = "embedded",
) -> int:
    """Apply every notification after the fed position; returns how many were read."""
    total = 0
    while True:
        row = conn.execute("SELECT position FROM feed_positions WHERE name = ?", (name,)).fetchone()
        start = int(row[0]) if row else 0
        notifications = ledger.recorder.select_notifications(
            start=start, limit=batch_size, inclusive_of_start=False
        )
        if not notifications:
            return total
        with conn:
            for notification in notifications:
                apply_message(
                    store, notification_to_message(ledger.mapper, notification), projections
                )
            conn.execute(
                "INSERT INTO feed_positions (name, position) VALUES (?, ?) "
                "ON CONFLICT (name) DO UPDATE SET position = excluded.position",
                (name, notifications[-1].id),
            )
        total += len(notifications)
