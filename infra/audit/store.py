"""Raw reads of the event store for auditors: stored rows with their ledger position
and chain hashes, paged by key so even very long streams are never held in memory."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from psycopg.rows import tuple_row

from commands.ledger import DealLedger
from infra.store.recorders import HashChainingPostgresRecorder, HashChainingSQLiteRecorder

PAGE = 1000
# Whole-ledger passes (verify --all) read bigger pages: fewer round trips, same order.
LEDGER_PAGE = 10_000


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
    leaf: int | None = None  # its index in the ledger tree (infra/store/sealing.py)

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
            self.tree = f'"{schema}"."{recorder.tree_table_name}"'
            self.seal_table = f'"{schema}"."{recorder.seal_table_name}"'
            self.checkpoints = f'"{schema}"."{recorder.checkpoints_table_name}"'
            self.position = "e.notification_id"
        elif isinstance(recorder, HashChainingSQLiteRecorder):
            self.dialect = "sqlite"
            self.events = recorder.events_table_name
            self.hashes = recorder.hashes_table_name
            self.tree = recorder.tree_table_name
            self.seal_table = recorder.seal_table_name
            self.checkpoints = recorder.checkpoints_table_name
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
        position, originator_id, version, topic, state, prev_hash, digest, scheme, leaf = raw
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
            None if leaf is None else int(leaf),
        )

    def _select(self, hashes: bool = True) -> str:
        if not hashes:
            return (
                f"SELECT {self.position}, e.originator_id, e.originator_version, e.topic, "
                f"e.state, NULL AS prev_hash, NULL AS hash, NULL AS scheme, NULL AS leaf "
                f"FROM {self.events} e "
            )
        return (
            f"SELECT {self.position}, e.originator_id, e.originator_version, e.topic, e.state, "
            f"h.prev_hash, h.hash, h.scheme, h.leaf FROM {self.events} e "
            f"LEFT JOIN {self.hashes} h "
            "ON h.originator_id = e.originator_id AND h.originator_version = e.originator_version "
        )

    # -- reads ----------------------------------------------------------------

    def _paged(
        self,
        select: str,
        where: str,
        fixed: tuple[Any, ...],
        key: Callable[[StoredRow], Any],
        after: Any,
        page: int,
    ) -> Iterator[StoredRow]:
        """Rows in the order of `key`, read `page` at a time (keyset paging): `where`'s
        placeholders take `fixed`, then the key of the last row read."""
        while True:
            rows = self._query(select + where + f" LIMIT {page}", (*fixed, after))
            for raw in rows:
                row = self._row(raw)
                after = key(row)
                yield row
            if len(rows) < page:
                return

    def stream(
        self, originator_id: UUID, after_version: int = 0, *, hashes: bool = True
    ) -> Iterator[StoredRow]:
        """One stream in version order (without its hash rows unless `hashes`)."""
        where = "WHERE e.originator_id = %s AND e.originator_version > %s "
        where += "ORDER BY e.originator_version"
        return self._paged(
            self._select(hashes),
            where,
            (self._id(originator_id),),
            lambda row: row.version,
            after_version,
            PAGE,
        )

    def in_ledger_order(self) -> Iterator[StoredRow]:
        """Every stored event in ledger (position) order, with its hash row."""
        where = f"WHERE {self.position} > %s ORDER BY {self.position}"
        return self._paged(self._select(), where, (), lambda row: row.position, 0, LEDGER_PAGE)

    def sealed_from(self) -> int | None:
        """The position from which every event must be hashed and in the tree; None
        when the seal row is gone."""
        rows = self._query(f"SELECT sealed_from FROM {self.seal_table}", ())
        return int(rows[0][0]) if rows else None

    def tree_size(self) -> int:
        """Leaves the stored tree holds (its highest leaf index + 1)."""
        rows = self._query(f"SELECT max(idx) FROM {self.tree} WHERE level = 0", ())
        return 0 if rows[0][0] is None else int(rows[0][0]) + 1

    def nodes_completed_by(self, lo: int, hi: int) -> dict[tuple[int, int], bytes]:
        """Every stored node (level 0 included) that leaves lo..hi-1 complete, in one
        query: at level L those with index from lo >> L to (hi - 1) >> L."""
        levels = max(hi - 1, 1).bit_length() + 1
        where = " OR ".join(["(level = %s AND idx >= %s AND idx <= %s)"] * levels)
        params = [v for level in range(levels) for v in (level, lo >> level, (hi - 1) >> level)]
        return {
            (int(level), int(idx)): bytes(digest)
            for level, idx, digest in self._query(
                f"SELECT level, idx, hash FROM {self.tree} WHERE {where}", params
            )
        }

    def nodes(self, wanted: Iterable[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        """Stored perfect-subtree hashes by (level, index), in one query; absent ones
        are simply not in the answer."""
        coords = sorted(set(wanted))
        if not coords:
            return {}
        found: dict[tuple[int, int], bytes] = {}
        for start in range(0, len(coords), 500):
            chunk = coords[start : start + 500]
            where = " OR ".join(["(level = %s AND idx = %s)"] * len(chunk))
            params = [value for coord in chunk for value in coord]
            for level, idx, digest in self._query(
                f"SELECT level, idx, hash FROM {self.tree} WHERE {where}", params
            ):
                found[(int(level), int(idx))] = bytes(digest)
        return found

    def heads_at(self, tree_size: int) -> list[tuple[str, int, str]]:
        """(stream, version, hash) of every stream's last event among the tree's first
        `tree_size` leaves, by stream id: what a checkpoint commits to."""
        if self.dialect == "postgres":
            sql = (
                "SELECT DISTINCT ON (originator_id) originator_id, originator_version, hash "
                f"FROM {self.hashes} WHERE leaf < %s "
                "ORDER BY originator_id, originator_version DESC"
            )
        else:
            # SQLite takes the bare columns from the row holding the max().
            sql = (
                "SELECT originator_id, max(originator_version), hash "
                f"FROM {self.hashes} WHERE leaf < %s GROUP BY originator_id"
            )
        heads = [
            (str(UUID(str(stream))), int(version), str(digest))
            for stream, version, digest in self._query(sql, (tree_size,))
        ]
        return sorted(heads)

    def newest_checkpoint_bodies(self, limit: int = 100) -> list[str]:
        """The newest checkpoints the ledger wrote, newest first, as it keeps them: a copy
        inside the database, for exports and the writer; `verify` trusts only outside
        copies."""
        return [
            str(body)
            for (body,) in self._query(
                f"SELECT body FROM {self.checkpoints} ORDER BY tree_size DESC LIMIT {int(limit)}",
                (),
            )
        ]

    def keep_checkpoint(self, tree_size: int, body: str) -> None:
        recorder: Any = self.ledger.recorder
        sql = f"INSERT INTO {self.checkpoints} (tree_size, body) VALUES (%s, %s) "
        sql += "ON CONFLICT (tree_size) DO NOTHING"
        if self.dialect == "postgres":
            with recorder.datastore.transaction(commit=True) as curs:
                curs.execute(sql, (tree_size, body))
        else:
            with recorder.datastore.transaction(commit=True) as curs:
                curs.execute(sql.replace("%s", "?"), (tree_size, body))

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
