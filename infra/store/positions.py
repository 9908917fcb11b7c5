"""Positions kept in PostgreSQL: what the relay published, what consumers consumed."""

from __future__ import annotations

import psycopg

RELAY_DDL = """
CREATE TABLE IF NOT EXISTS relay_positions (
    relay_name text PRIMARY KEY,
    position bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
)"""

CONSUMER_DDL = """
CREATE TABLE IF NOT EXISTS consumer_offsets (
    group_id text NOT NULL,
    topic text NOT NULL,
    partition integer NOT NULL,
    next_offset bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (group_id, topic, partition)
)"""


def ensure_position_tables(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    from infra.store.ddl import serialised_ddl

    with serialised_ddl(conn), conn.transaction():
        conn.execute(RELAY_DDL)
        conn.execute(CONSUMER_DDL)


def published_position(conn: psycopg.Connection[tuple[object, ...]], relay_name: str) -> int:
    row = conn.execute(
        "SELECT position FROM relay_positions WHERE relay_name = %s", (relay_name,)
    ).fetchone()
    return int(str(row[0])) if row else 0


def record_published(
    conn: psycopg.Connection[tuple[object, ...]], relay_name: str, position: int
) -> None:
    """Only ever moves forward, so a slow duplicate relay cannot rewind another."""
    with conn.transaction():
        conn.execute(
            "INSERT INTO relay_positions (relay_name, position) VALUES (%s, %s) "
            "ON CONFLICT (relay_name) DO UPDATE SET position = GREATEST("
            "relay_positions.position, EXCLUDED.position), updated_at = now()",
            (relay_name, position),
        )


def stored_offsets(
    conn: psycopg.Connection[tuple[object, ...]], group_id: str, topic: str
) -> dict[int, int]:
    rows = conn.execute(
        "SELECT partition, next_offset FROM consumer_offsets WHERE group_id = %s AND topic = %s",
        (group_id, topic),
    ).fetchall()
    return {int(str(p)): int(str(o)) for p, o in rows}


def store_offset(
    conn: psycopg.Connection[tuple[object, ...]],
    group_id: str,
    topic: str,
    partition: int,
    next_offset: int,
) -> None:
    """Called inside the caller's transaction, beside the read-model changes."""
    conn.execute(
        "INSERT INTO consumer_offsets (group_id, topic, partition, next_offset) "
        "VALUES (%s, %s, %s, %s) ON CONFLICT (group_id, topic, partition) "
        "DO UPDATE SET next_offset = EXCLUDED.next_offset, updated_at = now()",
        (group_id, topic, partition, next_offset),
    )
