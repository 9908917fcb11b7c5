"""Event-store recorders that chain a hash over every stored event.

For each new event the recorder writes (stream, version, prev_hash, hash, scheme)
into a side table in the SAME transaction as the event, so a concurrent writer to
the same stream fails on the event's primary key exactly as before. The hash covers
the event's ledger position (hash scheme 2), which the database assigns on insert.
On PostgreSQL the whole append is one call of a database function (lock, events,
links: one round trip); on SQLite the recorder computes the links itself. Rows
written before positions were covered keep scheme 1 and verify as they always did.
Selected through the library's APPLICATION_RECORDER_TOPIC setting (see
infra/settings.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import (
    InterfaceError,
    OperationalError,
    ProgrammingError,
    StoredEvent,
)
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteDatastore
from eventsourcing.utils import retry
from psycopg.sql import SQL, Identifier, Literal

from infra.audit.bundle_check import GENESIS, SCHEME, SCHEME_2_TAG, UNSEALED, event_hash
from infra.store import subject_keys
from infra.store.group_commit import GroupCommit
from infra.store.sealing import (
    CHECKPOINTS_SUFFIX,
    SEAL_SUFFIX,
    TREE_SUFFIX,
    postgres_statements,
    sqlite_create_statements,
    sqlite_next_leaf,
    sqlite_push,
    sqlite_seal,
)

HASHES_SUFFIX = "_hashes"
# Tables created before hash schemes existed hold scheme-1 rows only.
_SCHEME_COLUMN = "scheme smallint NOT NULL DEFAULT 1"
# Rows written before the ledger tree have no leaf.
_LEAF_COLUMN = "leaf bigint"


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
                "prev_hash text NOT NULL, hash text NOT NULL, {scheme}, {leaf}, "
                "PRIMARY KEY (originator_id, originator_version))"
            ).format(schema=schema, table=table, scheme=SQL(_SCHEME_COLUMN), leaf=SQL(_LEAF_COLUMN))
        )
        # A table from before hash schemes (or the tree) gains the column; checked first,
        # so that a start-up does not take the table's ALTER lock when nothing needs it.
        for column, definition in (("scheme", _SCHEME_COLUMN), ("leaf", _LEAF_COLUMN)):
            self.sql_create_statements.append(
                SQL(
                    "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM information_schema.columns "
                    "WHERE table_schema = {schema_name} AND table_name = {table_name} "
                    "AND column_name = {column}) THEN "
                    "ALTER TABLE {schema}.{table} ADD COLUMN {definition}; END IF; END $$"
                ).format(
                    schema=schema,
                    table=table,
                    schema_name=Literal(self.datastore.schema),
                    table_name=Literal(self.hashes_table_name),
                    column=Literal(column),
                    definition=SQL(definition),
                )
            )
        self.tree_table_name = events_table_name + TREE_SUFFIX
        self.seal_table_name = events_table_name + SEAL_SUFFIX
        self.checkpoints_table_name = events_table_name + CHECKPOINTS_SUFFIX
        push_function = f"dealledger_tree_push_{events_table_name}"
        self.sql_create_statements.extend(
            postgres_statements(
                self.datastore.schema, events_table_name, self.hashes_table_name, push_function
            )
        )
        self.sql_create_statements.extend(
            subject_keys.postgres_statements(self.datastore.schema, events_table_name)
        )
        self.subject_keys = subject_keys.SqlKeyTable(datastore, events_table_name, postgres=True)
        self.append_function_name = f"dealledger_append_{events_table_name}"
        events = SQL("{schema}.{table}").format(
            schema=schema, table=Identifier(self.events_table_name)
        )
        hashes = SQL("{schema}.{table}").format(schema=schema, table=table)
        # An append (lock, events, their chain links) is one statement: one round trip,
        # so the table lock is held only while the database works, never across the
        # network; and appends that arrive together are written by the same statement
        # (infra/store/group_commit.py), one group each. Each group runs in its own
        # block (a savepoint): a version already taken rolls back that group alone and
        # answers it with a NULL position, while the others go on. Each link is found
        # the way `chained` finds it: the stream's previous hash row (written by this
        # same loop for an earlier event of the batch), GENESIS at version 1, UNSEALED
        # when the previous event was never hashed. The digest is `event_hash` scheme 2,
        # computed by the database; each event then becomes the tree's next leaf
        # (infra/store/sealing.py), numbered on from the tree's size under the lock, and a
        # group that rolls back gives its leaf numbers back.
        self.sql_create_statements.append(
            SQL(
                "CREATE OR REPLACE FUNCTION {schema}.{function}("
                "ids uuid[], versions bigint[], topics text[], states bytea[], "
                "groups integer[]) "
                "RETURNS TABLE (grp integer, pos bigint) LANGUAGE plpgsql AS $BODY$ "
                "DECLARE i integer := 1; n integer := coalesce(array_length(ids, 1), 0); "
                "g integer; positions bigint[]; p bigint; prev text; d bytea; k bigint; "
                "k0 bigint; "
                "BEGIN "
                "SET LOCAL lock_timeout = '{lock_timeout}s'; "
                "LOCK TABLE {events} IN EXCLUSIVE MODE; "
                "NOTIFY {channel}; "
                "SELECT coalesce(max(t.idx) + 1, 0) INTO k FROM {tree} t WHERE t.level = 0; "
                "WHILE i <= n LOOP "
                "g := groups[i]; positions := '{{}}'; k0 := k; "
                "BEGIN "
                "WHILE i <= n AND groups[i] = g LOOP "
                "INSERT INTO {events} (originator_id, originator_version, topic, state) "
                "VALUES (ids[i], versions[i], topics[i], states[i]) "
                "RETURNING notification_id INTO p; "
                "IF versions[i] = 1 THEN prev := {genesis}; "
                "ELSE "
                "SELECT h.hash INTO prev FROM {hashes} h "
                "WHERE h.originator_id = ids[i] AND h.originator_version = versions[i] - 1; "
                "IF NOT FOUND THEN prev := {unsealed}; END IF; "
                "END IF; "
                "d := sha256(convert_to(concat_ws(chr(31), {tag}, prev, "
                "ids[i]::text, versions[i]::text, p::text, topics[i]) || chr(31), 'UTF8') "
                "|| states[i]); "
                "INSERT INTO {hashes} "
                "(originator_id, originator_version, prev_hash, hash, scheme, leaf) "
                "VALUES (ids[i], versions[i], prev, encode(d, 'hex'), {scheme}, k); "
                "PERFORM {push}(k, sha256('\\x00'::bytea || d)); "
                "k := k + 1; "
                "positions := positions || p; "
                "i := i + 1; "
                "END LOOP; "
                "EXCEPTION WHEN unique_violation THEN "
                "positions := NULL; k := k0; "
                "WHILE i <= n AND groups[i] = g LOOP i := i + 1; END LOOP; "
                "END; "
                "IF positions IS NULL THEN grp := g; pos := NULL; RETURN NEXT; "
                "ELSE FOREACH p IN ARRAY positions LOOP grp := g; pos := p; RETURN NEXT; "
                "END LOOP; END IF; "
                "END LOOP; "
                "END; $BODY$"
            ).format(
                schema=schema,
                function=Identifier(self.append_function_name),
                lock_timeout=SQL(str(self.datastore.lock_timeout)),
                events=events,
                hashes=hashes,
                tree=SQL("{schema}.{table}").format(
                    schema=schema, table=Identifier(self.tree_table_name)
                ),
                push=SQL("{schema}.{function}").format(
                    schema=schema, function=Identifier(push_function)
                ),
                channel=Identifier(self.channel_name),
                genesis=Literal(GENESIS),
                unsealed=Literal(UNSEALED),
                tag=Literal(SCHEME_2_TAG),
                scheme=Literal(SCHEME),
            )
        )
        self.append_statement = SQL(
            "SELECT grp, pos FROM {schema}.{function}(%s, %s, %s, %s, %s)"
        ).format(schema=schema, function=Identifier(self.append_function_name))
        self.group_commit = GroupCommit(self._write_groups)

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        """Appends the events and their chain links atomically, in one statement shared
        with the appends of other threads arriving at the same moment; a version
        already taken fails this append alone, with IntegrityError."""
        if kwargs.get("tracking") is not None:
            raise ProgrammingError("this recorder does not record tracking positions")
        if not stored_events:
            return []
        return self.group_commit.append(stored_events)

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def _write_groups(self, groups: Sequence[Sequence[StoredEvent]]) -> list[list[int] | None]:
        # A retry after a connection lost during the commit finds the versions taken
        # (if it had committed) and answers IntegrityError: the ledger then finds each
        # command's record and replays its outcome, so nothing is applied twice.
        events = [(g, e) for g, group in enumerate(groups) for e in group]
        params = (
            [e.originator_id for _, e in events],
            [e.originator_version for _, e in events],
            [e.topic for _, e in events],
            [e.state for _, e in events],
            [g for g, _ in events],
        )
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self.append_statement, params, prepare=True)
            rows = curs.fetchall()
        results: list[list[int] | None] = [[] for _ in groups]
        for row in rows:
            if row["pos"] is None:
                results[row["grp"]] = None
            else:
                held = results[row["grp"]]
                if held is not None:
                    held.append(int(row["pos"]))
        return results

    def delete_snapshots(self, snapshots_table: str, streams: Sequence[UUID]) -> None:
        """Drops these streams' snapshots (a cache: they are taken again later)."""
        statement = SQL("DELETE FROM {schema}.{table} WHERE originator_id = ANY(%s)").format(
            schema=Identifier(self.datastore.schema), table=Identifier(snapshots_table)
        )
        with self.datastore.get_connection() as conn:
            conn.execute(statement, (list(streams),))

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def select_events_of_topic(self, originator_id: UUID, topic: str) -> list[StoredEvent]:
        """One stream's events of one type, in version order."""
        statement = SQL(
            "SELECT originator_id, originator_version, topic, state FROM {schema}.{table} "
            "WHERE originator_id = %s AND topic = %s ORDER BY originator_version"
        ).format(schema=Identifier(self.datastore.schema), table=Identifier(self.events_table_name))
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(statement, (originator_id, topic), prepare=True)
            return [
                StoredEvent(
                    originator_id=row["originator_id"],
                    originator_version=row["originator_version"],
                    topic=row["topic"],
                    state=bytes(row["state"]),
                )
                for row in curs.fetchall()
            ]

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def select_streams(
        self, after: dict[UUID, int], snapshots_table: str | None
    ) -> tuple[dict[UUID, StoredEvent], dict[UUID, list[StoredEvent]]]:
        """Several streams in one round trip: for each id, its newest snapshot (only when
        `after` is 0: nothing of it is held yet) and its events after that snapshot and
        after `after[id]`, in version order."""
        if not after:
            return {}, {}
        schema = Identifier(self.datastore.schema)
        events = SQL("{schema}.{table}").format(
            schema=schema, table=Identifier(self.events_table_name)
        )
        keys = SQL("unnest(%(ids)s::uuid[], %(after)s::bigint[]) AS k(id, after)")
        if snapshots_table is None:
            statement = SQL(
                "SELECT false AS snapshot, e.originator_id, e.originator_version, e.topic, "
                "e.state FROM {events} e JOIN {keys} ON e.originator_id = k.id "
                "WHERE e.originator_version > k.after ORDER BY 2, 3"
            ).format(events=events, keys=keys)
        else:
            snapshots = SQL("{schema}.{table}").format(
                schema=schema, table=Identifier(snapshots_table)
            )
            statement = SQL(
                "WITH s AS (SELECT DISTINCT ON (s.originator_id) s.originator_id, "
                "s.originator_version, s.topic, s.state FROM {snapshots} s "
                "JOIN {keys} ON s.originator_id = k.id AND k.after = 0 "
                "ORDER BY s.originator_id, s.originator_version DESC) "
                "SELECT true AS snapshot, s.originator_id, s.originator_version, s.topic, "
                "s.state FROM s "
                "UNION ALL "
                "SELECT false, e.originator_id, e.originator_version, e.topic, e.state "
                "FROM {events} e JOIN {keys} ON e.originator_id = k.id "
                "LEFT JOIN s ON s.originator_id = k.id "
                "WHERE e.originator_version > greatest(k.after, coalesce(s.originator_version, 0)) "
                "ORDER BY 2, 1 DESC, 3"
            ).format(snapshots=snapshots, events=events, keys=keys)
        ids = list(after)
        found_snapshots: dict[UUID, StoredEvent] = {}
        found_events: dict[UUID, list[StoredEvent]] = {}
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(statement, {"ids": ids, "after": [after[i] for i in ids]}, prepare=True)
            for row in curs.fetchall():
                stored = StoredEvent(
                    originator_id=row["originator_id"],
                    originator_version=row["originator_version"],
                    topic=row["topic"],
                    state=bytes(row["state"]),
                )
                stream = UUID(str(row["originator_id"]))
                if row["snapshot"]:
                    found_snapshots[stream] = stored
                else:
                    found_events.setdefault(stream, []).append(stored)
        return found_snapshots, found_events


class HashChainingSQLiteRecorder(SQLiteApplicationRecorder):
    hashes_table_name = "stored_events" + HASHES_SUFFIX

    def __init__(
        self, datastore: SQLiteDatastore, *, events_table_name: str = "stored_events"
    ) -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        self.hashes_table_name = events_table_name + HASHES_SUFFIX
        self.tree_table_name = events_table_name + TREE_SUFFIX
        self.seal_table_name = events_table_name + SEAL_SUFFIX
        self.checkpoints_table_name = events_table_name + CHECKPOINTS_SUFFIX
        self.subject_keys = subject_keys.SqlKeyTable(datastore, events_table_name, postgres=False)

    def construct_create_table_statements(self) -> list[str]:
        return [
            *super().construct_create_table_statements(),
            f"CREATE TABLE IF NOT EXISTS {self.hashes_table_name} ("
            "originator_id TEXT NOT NULL, originator_version INTEGER NOT NULL, "
            "prev_hash TEXT NOT NULL, hash TEXT NOT NULL, "
            "scheme INTEGER NOT NULL DEFAULT 1, leaf INTEGER, "
            "PRIMARY KEY (originator_id, originator_version))",
            *sqlite_create_statements(self.events_table_name),
            *subject_keys.sqlite_statements(self.events_table_name),
        ]

    def _create_table(self, c: Any) -> None:
        super()._create_table(c)
        # A table from before hash schemes (or the tree) gains the columns.
        c.execute(f"PRAGMA table_info({self.hashes_table_name})")
        columns = {row[1] for row in c.fetchall()}
        if "scheme" not in columns:
            c.execute(
                f"ALTER TABLE {self.hashes_table_name} ADD COLUMN scheme INTEGER NOT NULL DEFAULT 1"
            )
        if "leaf" not in columns:
            c.execute(f"ALTER TABLE {self.hashes_table_name} ADD COLUMN leaf INTEGER")
        sqlite_seal(c, self.events_table_name, self.hashes_table_name)

    def delete_snapshots(self, snapshots_table: str, streams: Sequence[UUID]) -> None:
        """Drops these streams' snapshots (a cache: they are taken again later)."""
        marks = ", ".join("?" * len(streams))
        with self.datastore.transaction(commit=True) as c:
            # Freed space is zeroed: the rows may predate sealing and hold text.
            c.execute("PRAGMA secure_delete = ON")
            c.execute(
                f"DELETE FROM {snapshots_table} WHERE originator_id IN ({marks})",
                [s.hex for s in streams],
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
        leaf = sqlite_next_leaf(c, self.events_table_name)
        for stream, version, prev, digest, scheme in chained(stored_events, previous, returning):
            c.execute(
                f"INSERT INTO {self.hashes_table_name} "
                "(originator_id, originator_version, prev_hash, hash, scheme, leaf) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (UUID(stream).hex, version, prev, digest, scheme, leaf),
            )
            sqlite_push(c, self.events_table_name, leaf, digest)
            leaf += 1
        return returning
