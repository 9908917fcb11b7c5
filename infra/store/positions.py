"""Positions kept in PostgreSQL: what the relay published, what consumers consumed."""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any, Protocol

import psycopg
from psycopg.types.json import Jsonb


class Executes(Protocol):
    """A psycopg connection, or a read store that may hold the statement back."""

    def execute(self, sql: str, params: Any, /) -> Any: ...


RELAY_DDL = """
CREATE TABLE IF NOT EXISTS relay_positions (
    relay_name text PRIMARY KEY,
    position bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
)"""

# The highest offset the relay had written to each partition when it recorded a position.
MARKS_DDL = """
CREATE TABLE IF NOT EXISTS relay_marks (
    relay_name text NOT NULL,
    position bigint NOT NULL,
    offsets jsonb NOT NULL,
    PRIMARY KEY (relay_name, position)
)"""
# Marks are needed only while some reader may still ask for their positions; about
# one batch in a hundred prunes the older ones.
MARKS_KEPT = 20_000
PRUNE_CHANCE = 0.01

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
        conn.execute(MARKS_DDL)
        conn.execute(CONSUMER_DDL)


def published_position(conn: psycopg.Connection[tuple[object, ...]], relay_name: str) -> int:
    row = conn.execute(
        "SELECT position FROM relay_positions WHERE relay_name = %s", (relay_name,)
    ).fetchone()
    return int(str(row[0])) if row else 0


def record_published(
    conn: psycopg.Connection[tuple[object, ...]],
    relay_name: str,
    position: int,
    offsets: Mapping[int, int] | None = None,
) -> None:
    """Only ever moves forward, so a slow duplicate relay cannot rewind another. With
    `offsets` (partition -> highest offset written so far) it also records a mark."""
    with conn.transaction():
        conn.execute(
            "INSERT INTO relay_positions (relay_name, position) VALUES (%s, %s) "
            "ON CONFLICT (relay_name) DO UPDATE SET position = GREATEST("
            "relay_positions.position, EXCLUDED.position), updated_at = now()",
            (relay_name, position),
        )
        if offsets is not None:
            conn.execute(
                "INSERT INTO relay_marks (relay_name, position, offsets) VALUES (%s, %s, %s) "
                "ON CONFLICT (relay_name, position) DO UPDATE SET offsets = EXCLUDED.offsets",
                (relay_name, position, Jsonb({str(p): o for p, o in sorted(offsets.items())})),
            )
            if random.random() < PRUNE_CHANCE:
                conn.execute(
                    "DELETE FROM relay_marks WHERE relay_name = %s AND position < ("
                    "SELECT min(position) FROM (SELECT position FROM relay_marks "
                    "WHERE relay_name = %s ORDER BY position DESC LIMIT %s) kept)",
                    (relay_name, relay_name, MARKS_KEPT),
                )


def last_mark(conn: psycopg.Connection[tuple[object, ...]], relay_name: str) -> dict[int, int]:
    """The offsets of the relay's latest mark (empty before its first)."""
    row = conn.execute(
        "SELECT offsets FROM relay_marks WHERE relay_name = %s ORDER BY position DESC LIMIT 1",
        (relay_name,),
    ).fetchone()
    return {} if row is None else {int(p): int(o) for p, o in dict(row[0]).items()}  # type: ignore[call-overload]


def stored_offsets(
    conn: psycopg.Connection[tuple[object, ...]], group_id: str, topic: str
) -> dict[int, int]:
    rows = conn.execute(
        "SELECT partition, next_offset FROM consumer_offsets WHERE group_id = %s AND topic = %s",
        (group_id, topic),
    ).fetchall()
    return {int(str(p)): int(str(o)) for p, o in rows}


def store_offsets(
    conn: Executes,
    group_id: str,
    topic: str,
    next_offsets: Mapping[int, int],
) -> None:
    """Several partitions' next offsets in one statement, inside the caller's transaction."""
    if not next_offsets:
        return
    partitions = sorted(next_offsets)
    conn.execute(
        "INSERT INTO consumer_offsets (group_id, topic, partition, next_offset) "
        "SELECT %s, %s, p, o FROM unnest(%s::integer[], %s::bigint[]) AS u(p, o) "
        "ON CONFLICT (group_id, topic, partition) "
        "DO UPDATE SET next_offset = EXCLUDED.next_offset, updated_at = now()",
        (group_id, topic, partitions, [next_offsets[p] for p in partitions]),
    )


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


def applied_through(
    conn: psycopg.Connection[tuple[object, ...]],
    relay_name: str,
    group_id: str,
    topic: str,
    position: int,
) -> bool:
    """Whether consumer group `group_id` has consumed every event up to `position`:
    the first mark at or after it names, per partition, an offset the group is past."""
    row = conn.execute(
        "SELECT offsets FROM relay_marks WHERE relay_name = %s AND position >= %s "
        "ORDER BY position LIMIT 1",
        (relay_name, position),
    ).fetchone()
    if row is None:
        return False  # not published yet
    consumed = stored_offsets(conn, group_id, topic)
    return _covers(consumed, row[0])


def applied_position(
    conn: psycopg.Connection[tuple[object, ...]], relay_name: str, group_id: str, topic: str
) -> int:
    """The highest recently marked position up to which `group_id` consumed everything."""
    consumed = stored_offsets(conn, group_id, topic)
    rows = conn.execute(
        "SELECT position, offsets FROM relay_marks WHERE relay_name = %s "
        "ORDER BY position DESC LIMIT 200",
        (relay_name,),
    ).fetchall()
    for position, offsets in rows:
        if _covers(consumed, offsets):
            return int(str(position))
    return 0


def _covers(consumed: Mapping[int, int], offsets: object) -> bool:
    return all(
        consumed.get(int(partition), 0) > int(offset)
        for partition, offset in dict(offsets).items()  # type: ignore[call-overload]
    )
