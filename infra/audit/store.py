"""Raw reads of the event store for auditors: stored rows with their ledger position
and chain hashes, paged by key so even very long streams are never held in memory."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from psycopg.rows import tuple_row

from commands.ledger import DealLedger
from infra.store.recorders import HashChainingPostgresRecorder, HashChainingSQLiteRecorder

PAGE = 1000


@dataclass(frozen=True)
class StoredRow:
    position: int
    originator_id: UUID
    version: int
    topic: str
    state: bytes
    prev_hash: str | None  # None: stored before hash chaining, or its hash row is gone
    hash: str | None
    scheme: int | None = None  # how `hash` was computed (bundle_check.event_hash)

    def stored_event(self) -> StoredEvent:
        return StoredEvent(self.originator_id, self.version, self.topic, self.state)


class AuditStore:
    """Reads what the ledger stored, bypassing snapshots and caches."""

    def __init__(self, ledger: DealLedger) -> None:
        self.ledger = ledger
        recorder = ledger.recorder
        if isinstance(recorder, HashChainingPostgresRecorder):
            schema = recorder.datastore.schema
            self.dialect = "postgres"
            self.events = f'"{schema}"."{recorder.events_table_name}"'
            self.hashes = f'"{schema}"."{recorder.hashes_table_name}"'
            self.position = "e.notification_id"
        elif isinstance(recorder, HashChainingSQLiteRecorder):
            self.dialect = "sqlite"
            self.events = recorder.events_table_name
            self.hashes = recorder.hashes_table_name
            self.position = "e.rowid"
        else:
            raise TypeError(
                "auditing needs the hash-chaining recorder (APPLICATION_RECORDER_TOPIC); "
                f"this ledger uses {type(recorder).__name__}"
            )

    # -- plumbing -------------------------------------------------------------

    def _query(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        recorder: Any = self.ledger.recorder
        if self.dialect == "postgres":
            with (
                recorder.datastore.get_connection() as conn,
                conn.cursor(row_factory=tuple_row) as curs,
            ):
                curs.execute(sql, params)
                rows: list[tuple[Any, ...]] = curs.fetchall()
                return rows
        sql = sql.replace("%s", "?")
        with recorder.datastore.transaction(commit=False) as curs:
            curs.execute(sql, tuple(params))
            return [tuple(row) for row in curs.fetchall()]

    def _id(self, originator_id: UUID) -> Any:
        return originator_id if self.dialect == "postgres" else originator_id.hex

    def _row(self, raw: tuple[Any, ...]) -> StoredRow:
        position, originator_id, version, topic, state, prev_hash, digest, scheme = raw
        return StoredRow(
            int(position),
            # PostgreSQL hands back UUIDs; SQLite, the hex the library stores.
            originator_id if isinstance(originator_id, UUID) else UUID(str(originator_id)),
            int(version),
            str(topic),
            bytes(state),
            prev_hash,
            digest,
            None if scheme is None else int(scheme),
        )

    def _select(self, hashes: bool = True) -> str:
        if not hashes:
            return (
                f"SELECT {self.position}, e.originator_id, e.originator_version, e.topic, "
                f"e.state, NULL AS prev_hash, NULL AS hash, NULL AS scheme FROM {self.events} e "
            )
        return (
            f"SELECT {self.position}, e.originator_id, e.originator_version, e.topic, e.state, "
            f"h.prev_hash, h.hash, h.scheme FROM {self.events} e LEFT JOIN {self.hashes} h "
            "ON h.originator_id = e.originator_id AND h.originator_version = e.originator_version "
        )

    # -- reads ----------------------------------------------------------------

    def stream(
        self, originator_id: UUID, after_version: int = 0, *, hashes: bool = True
    ) -> Iterator[StoredRow]:
        """One stream in version order (without its hash rows unless `hashes`)."""
        version = after_version
        while True:
            rows = self._query(
                self._select(hashes) + "WHERE e.originator_id = %s AND e.originator_version > %s "
                f"ORDER BY e.originator_version LIMIT {PAGE}",
                (self._id(originator_id), version),
            )
            for raw in rows:
                row = self._row(raw)
                version = row.version
                yield row
            if len(rows) < PAGE:
                return

    def everything(self) -> Iterator[StoredRow]:
        """Every stored event, stream by stream, each in version order."""
        last: tuple[Any, int] | None = None
        while True:
            where = ""
            params: tuple[Any, ...] = ()
            if last is not None:
                where = (
                    "WHERE e.originator_id > %s OR "
                    "(e.originator_id = %s AND e.originator_version > %s) "
                )
                params = (last[0], last[0], last[1])
            rows = self._query(
                self._select()
                + where
                + f"ORDER BY e.originator_id, e.originator_version LIMIT {PAGE}",
                params,
            )
            for raw in rows:
                row = self._row(raw)
                last = (raw[1], row.version)
                yield row
            if len(rows) < PAGE:
                return

    def hashed_versions_without_events(
        self, originator_id: UUID | None = None
    ) -> list[tuple[UUID, int]]:
        """Hash rows whose event is gone: the trace a deleted event leaves."""
        where = "WHERE e.originator_id IS NULL"
        params: tuple[Any, ...] = ()
        if originator_id is not None:
            where += " AND h.originator_id = %s"
            params = (self._id(originator_id),)
        rows = self._query(
            f"SELECT h.originator_id, h.originator_version FROM {self.hashes} h "
            f"LEFT JOIN {self.events} e ON h.originator_id = e.originator_id "
            f"AND h.originator_version = e.originator_version {where} "
            "ORDER BY h.originator_id, h.originator_version",
            params,
        )
        return [(UUID(str(i)), int(v)) for i, v in rows]

    def decode(self, row: StoredRow) -> Any:
        return self.ledger.mapper.to_domain_event(row.stored_event())
