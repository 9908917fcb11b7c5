"""Event-store recorders that chain a hash over every stored event.

For each new event the recorder writes (stream, version, prev_hash, hash) into a
side table in the SAME transaction as the event, after the library has inserted
(and, on PostgreSQL, table-locked) the events, so a concurrent writer to the
same stream fails on the event's primary key exactly as before. Selected through
the library's APPLICATION_RECORDER_TOPIC setting (see infra/settings.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteDatastore
from psycopg.sql import SQL, Identifier

from infra.audit.bundle_check import GENESIS, UNSEALED, chain_hash

HASHES_SUFFIX = "_hashes"


def _stream_id(originator_id: UUID | str) -> str:
    return str(UUID(str(originator_id)))


def chained(
    stored_events: Sequence[StoredEvent], previous: dict[str, str | None]
) -> list[tuple[str, int, str, str]]:
    """(stream, version, prev_hash, hash) per event; `previous` maps each stream to
    the hash of the event before the batch (None when that event was never hashed)."""
    rows = []
    heads: dict[str, str] = {}
    for event in stored_events:
        stream = _stream_id(event.originator_id)
        if stream in heads:
            prev = heads[stream]
        elif event.originator_version == 1:
            prev = GENESIS
        else:
            prev = previous.get(stream) or UNSEALED
        digest = chain_hash(prev, stream, event.originator_version, event.topic, event.state)
        rows.append((stream, event.originator_version, prev, digest))
        heads[stream] = digest
    return rows


def _first_versions(stored_events: Sequence[StoredEvent]) -> dict[str, int]:
    firsts: dict[str, int] = {}
    for event in stored_events:
        stream = _stream_id(event.originator_id)
        firsts[stream] = min(firsts.get(stream, event.originator_version), event.originator_version)
    return firsts


class HashChainingPostgresRecorder(PostgresApplicationRecorder):
    def __init__(
        self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events"
    ) -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        self.hashes_table_name = events_table_name + HASHES_SUFFIX
        self.sql_create_statements.append(
            SQL(
                "CREATE TABLE IF NOT EXISTS {schema}.{table} ("
                "originator_id uuid NOT NULL, originator_version bigint NOT NULL, "
                "prev_hash text NOT NULL, hash text NOT NULL, "
                "PRIMARY KEY (originator_id, originator_version))"
            ).format(
                schema=Identifier(self.datastore.schema),
                table=Identifier(self.hashes_table_name),
            )
        )

    def _insert_stored_events(
        self, curs: Any, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> None:
        super()._insert_stored_events(curs, stored_events, **kwargs)
        table = SQL("{schema}.{table}").format(
            schema=Identifier(self.datastore.schema), table=Identifier(self.hashes_table_name)
        )
        previous: dict[str, str | None] = {}
        # A separate cursor: the library still reads RETURNING ids from `curs`.
        with curs.connection.cursor() as hashes:
            for stream, first in _first_versions(stored_events).items():
                if first > 1:
                    hashes.execute(
                        SQL(
                            "SELECT hash FROM {t} "
                            "WHERE originator_id = %s AND originator_version = %s"
                        ).format(t=table),
                        (stream, first - 1),
                        # Unprepared: if a racing writer's conflict aborts this pipelined
                        # transaction, psycopg would otherwise remember a prepared
                        # statement the server never created, and the pooled connection
                        # would fail every later append.
                        prepare=False,
                    )
                    row = hashes.fetchone()
                    previous[stream] = row["hash"] if row else None
            rows = chained(stored_events, previous)
            # One statement, never prepared (see above); its shape varies with the batch.
            values = SQL(", ").join([SQL("(%s, %s, %s, %s)")] * len(rows))
            hashes.execute(
                SQL(
                    "INSERT INTO {t} (originator_id, originator_version, prev_hash, hash) "
                    "VALUES {values}"
                ).format(t=table, values=values),
                [value for row in rows for value in row],
                prepare=False,
            )


class HashChainingSQLiteRecorder(SQLiteApplicationRecorder):
    hashes_table_name = "stored_events" + HASHES_SUFFIX

    def __init__(
        self, datastore: SQLiteDatastore, *, events_table_name: str = "stored_events"
    ) -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        self.hashes_table_name = events_table_name + HASHES_SUFFIX

    def construct_create_table_statements(self) -> list[str]:
        return [
            *super().construct_create_table_statements(),
            f"CREATE TABLE IF NOT EXISTS {self.hashes_table_name} ("
            "originator_id TEXT NOT NULL, originator_version INTEGER NOT NULL, "
            "prev_hash TEXT NOT NULL, hash TEXT NOT NULL, "
            "PRIMARY KEY (originator_id, originator_version))",
        ]

    def _insert_events(
        self, c: Any, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        returning = super()._insert_events(c, stored_events, **kwargs)
        previous: dict[str, str | None] = {}
        # Stream ids are stored as hex, as the library stores them in its events table.
        for stream, first in _first_versions(stored_events).items():
            if first > 1:
                c.execute(
                    f"SELECT hash FROM {self.hashes_table_name} "
                    "WHERE originator_id = ? AND originator_version = ?",
                    (UUID(stream).hex, first - 1),
                )
                row = c.fetchone()
                previous[stream] = row[0] if row else None
        for stream, version, prev, digest in chained(stored_events, previous):
            c.execute(
                f"INSERT INTO {self.hashes_table_name} "
                "(originator_id, originator_version, prev_hash, hash) VALUES (?, ?, ?, ?)",
                (UUID(stream).hex, version, prev, digest),
            )
        return returning
