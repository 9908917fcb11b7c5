"""Event-store recorders that chain a hash over every stored event.

For each new event the recorder writes (stream, version, prev_hash, hash, scheme)
into a side table in the SAME transaction as the event, after the library has
inserted (and, on PostgreSQL, table-locked) the events, so a concurrent writer to
the same stream fails on the event's primary key exactly as before. The hash covers
the event's ledger position (hash scheme 2), which the database assigns on insert:
the rows are written once the insert has returned the positions. Rows written
before positions were covered keep scheme 1 and verify as they always did.
Selected through the library's APPLICATION_RECORDER_TOPIC setting (see
infra/settings.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import ProgrammingError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteDatastore
from psycopg.sql import SQL, Identifier, Literal

from infra.audit.bundle_check import GENESIS, SCHEME, UNSEALED, event_hash

HASHES_SUFFIX = "_hashes"
# Tables created before hash schemes existed hold scheme-1 rows only.
_SCHEME_COLUMN = "scheme smallint NOT NULL DEFAULT 1"


def _stream_id(originator_id: UUID | str) -> str:
    return str(UUID(str(originator_id)))


def chained(
    stored_events: Sequence[StoredEvent],
    previous: dict[str, str | None],
    positions: Sequence[int],
) -> list[tuple[str, int, str, str, int]]:
    """(stream, version, prev_hash, hash, scheme) per event; `previous` maps each stream
    to the hash of the event before the batch (None when that event was never hashed),
    `positions` gives each event's ledger position."""
    rows = []
    heads: dict[str, str] = {}
    for event, position in zip(stored_events, positions, strict=True):
        stream = _stream_id(event.originator_id)
        if stream in heads:
            prev = heads[stream]
        elif event.originator_version == 1:
            prev = GENESIS
        else:
            prev = previous.get(stream) or UNSEALED
        digest = event_hash(
            SCHEME, prev, stream, event.originator_version, position, event.topic, event.state
        )
        rows.append((stream, event.originator_version, prev, digest, SCHEME))
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
        schema, table = Identifier(self.datastore.schema), Identifier(self.hashes_table_name)
        self.sql_create_statements.append(
            SQL(
                "CREATE TABLE IF NOT EXISTS {schema}.{table} ("
                "originator_id uuid NOT NULL, originator_version bigint NOT NULL, "
                "prev_hash text NOT NULL, hash text NOT NULL, {scheme}, "
                "PRIMARY KEY (originator_id, originator_version))"
            ).format(schema=schema, table=table, scheme=SQL(_SCHEME_COLUMN))
        )
        # A table from before hash schemes gains the column; checked first, so that a
        # start-up does not take the table's ALTER lock when nothing needs changing.
        self.sql_create_statements.append(
            SQL(
                "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM information_schema.columns "
                "WHERE table_schema = {schema_name} AND table_name = {table_name} "
                "AND column_name = 'scheme') THEN "
                "ALTER TABLE {schema}.{table} ADD COLUMN {scheme}; END IF; END $$"
            ).format(
                schema=schema,
                table=table,
                schema_name=Literal(self.datastore.schema),
                table_name=Literal(self.hashes_table_name),
                scheme=SQL(_SCHEME_COLUMN),
            )
        )
        # The positions come back with their keys, so each is matched to its event.
        self.insert_events_statement += SQL(", originator_id, originator_version")

    def _fetch_ids_after_insert_events(
        self, curs: Any, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        # Runs after the insert, inside its transaction and under its table lock.
        by_key = {
            (_stream_id(row["originator_id"]), int(row["originator_version"])): int(
                row["notification_id"]
            )
            for row in curs.fetchall()
        }
        try:
            positions = [
                by_key[(_stream_id(e.originator_id), e.originator_version)] for e in stored_events
            ]
        except KeyError as exc:
            raise ProgrammingError(f"no ledger position returned for {exc}") from None
        self._insert_hashes(curs, stored_events, positions)
        return positions

    def _insert_hashes(
        self, curs: Any, stored_events: Sequence[StoredEvent], positions: Sequence[int]
    ) -> None:
        table = SQL("{schema}.{table}").format(
            schema=Identifier(self.datastore.schema), table=Identifier(self.hashes_table_name)
        )
        previous: dict[str, str | None] = {}
        # A separate cursor: `curs` belongs to the library.
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
            rows = chained(stored_events, previous, positions)
            # One statement, never prepared (see above); its shape varies with the batch.
            values = SQL(", ").join([SQL("(%s, %s, %s, %s, %s)")] * len(rows))
            hashes.execute(
                SQL(
                    "INSERT INTO {t} (originator_id, originator_version, prev_hash, hash, scheme) "
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
            "scheme INTEGER NOT NULL DEFAULT 1, "
            "PRIMARY KEY (originator_id, originator_version))",
        ]

    def _create_table(self, c: Any) -> None:
        super()._create_table(c)
        # A table from before hash schemes gains the column (its rows are scheme 1).
        c.execute(f"PRAGMA table_info({self.hashes_table_name})")
        if "scheme" not in {row[1] for row in c.fetchall()}:
            c.execute(
                f"ALTER TABLE {self.hashes_table_name} ADD COLUMN scheme INTEGER NOT NULL DEFAULT 1"
            )

    def _insert_events(
        self, c: Any, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        returning = super()._insert_events(c, stored_events, **kwargs)
        if returning is None:
            raise TypeError("the SQLite recorder returned no rowids to hash the positions with")
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
        for stream, version, prev, digest, scheme in chained(stored_events, previous, returning):
            c.execute(
                f"INSERT INTO {self.hashes_table_name} "
                "(originator_id, originator_version, prev_hash, hash, scheme) "
                "VALUES (?, ?, ?, ?, ?)",
                (UUID(stream).hex, version, prev, digest, scheme),
            )
        return returning
