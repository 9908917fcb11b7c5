"""The table of data keys that encrypt personal fields: one live key per stream.

`<events>_subject_keys` holds, per key: the stream it encrypts, the data subject the
stream is about, the 256-bit key, and when it was erased. Erasing a subject sets its
keys to NULL; a stream of an erased subject that gets new personal data later gets a
new key (the old ciphertext stays unreadable). The keys are kept OUTSIDE the event
payloads, so destroying one leaves every event, hash, leaf and checkpoint as it was
(docs/privacy.md). How they are used: commands/keyring.py, commands/personal_data.py.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from uuid import UUID, uuid4

import psycopg
from psycopg.sql import SQL, Composed, Identifier

from commands.keyring import Key, new_key
from infra.logging import get_logger

KEYS_SUFFIX = "_subject_keys"
SCRUB_LOCK_SECONDS = 2
SCRUB_ATTEMPTS = 20  # about ten seconds of retries in all

_log = get_logger("keys")


def postgres_statements(schema: str, events_table: str) -> list[Composed]:
    keys = SQL("{}.{}").format(Identifier(schema), Identifier(events_table + KEYS_SUFFIX))
    return [
        SQL(
            "CREATE TABLE IF NOT EXISTS {keys} (key_id uuid PRIMARY KEY, "
            "stream_id uuid NOT NULL, subject text NOT NULL, key bytea, "
            "created_at timestamptz NOT NULL DEFAULT now(), erased_at timestamptz)"
        ).format(keys=keys),
        SQL(
            "CREATE UNIQUE INDEX IF NOT EXISTS {name} ON {keys} (stream_id) WHERE key IS NOT NULL"
        ).format(name=Identifier(events_table + KEYS_SUFFIX + "_live"), keys=keys),
        SQL("CREATE INDEX IF NOT EXISTS {name} ON {keys} (subject)").format(
            name=Identifier(events_table + KEYS_SUFFIX + "_subject"), keys=keys
        ),
        SQL("CREATE INDEX IF NOT EXISTS {name} ON {keys} (erased_at)").format(
            name=Identifier(events_table + KEYS_SUFFIX + "_erased"), keys=keys
        ),
    ]


def sqlite_statements(events_table: str) -> list[str]:
    keys = events_table + KEYS_SUFFIX
    return [
        f"CREATE TABLE IF NOT EXISTS {keys} (key_id TEXT PRIMARY KEY, "
        "stream_id TEXT NOT NULL, subject TEXT NOT NULL, key BLOB, "
        "created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')), "
        "erased_at TEXT)",
        f"CREATE UNIQUE INDEX IF NOT EXISTS {keys}_live ON {keys} (stream_id) "
        "WHERE key IS NOT NULL",
        f"CREATE INDEX IF NOT EXISTS {keys}_subject ON {keys} (subject)",
        f"CREATE INDEX IF NOT EXISTS {keys}_erased ON {keys} (erased_at)",
    ]


class SqlKeyTable:
    """The key table on PostgreSQL (`%s`, uuid columns) or SQLite (`?`, hex text):
    `datastore` is the event store's, so the keys live in the same database."""

    def __init__(self, datastore: Any, events_table: str, *, postgres: bool) -> None:
        self.datastore = datastore
        self.postgres = postgres
        self.table = events_table + KEYS_SUFFIX
        if postgres:
            self.table = f'"{datastore.schema}"."{self.table}"'

    def _sql(self, text: str) -> str:
        return text.format(keys=self.table).replace("%s", "%s" if self.postgres else "?")

    def _id(self, value: UUID) -> Any:
        return value if self.postgres else value.hex

    @contextmanager
    def _cursor(self) -> Iterator[Any]:
        if self.postgres:
            # The pool's connections autocommit: each statement is its own transaction
            # and one round trip (a key is made on a command's path).
            with self.datastore.get_connection() as conn, conn.cursor() as curs:
                yield curs
        else:
            with self.datastore.transaction(commit=True) as curs:
                yield curs

    def live_keys(self, streams: Iterable[UUID]) -> dict[UUID, Key]:
        wanted = list(streams)
        if not wanted:
            return {}
        with self._cursor() as curs:
            if self.postgres:
                curs.execute(
                    self._sql(
                        "SELECT stream_id, key_id, key FROM {keys} "
                        "WHERE stream_id = ANY(%s) AND key IS NOT NULL"
                    ),
                    (wanted,),
                )
            else:
                marks = ", ".join("?" * len(wanted))
                curs.execute(
                    self._sql(
                        "SELECT stream_id, key_id, key FROM {keys} "
                        f"WHERE stream_id IN ({marks}) AND key IS NOT NULL"
                    ),
                    [s.hex for s in wanted],
                )
            rows = curs.fetchall()
        return {UUID(str(r["stream_id"])): (UUID(str(r["key_id"])), bytes(r["key"])) for r in rows}

    def create(self, stream: UUID, subject: str) -> Key:
        # The partial unique index admits one live key per stream: a writer that
        # lost the race takes the winner's (and tries again should that one have been
        # erased in between).
        for _ in range(3):
            key_id, key = uuid4(), new_key()
            with self._cursor() as curs:
                curs.execute(
                    self._sql(
                        "INSERT INTO {keys} (key_id, stream_id, subject, key) "
                        "VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING key_id"
                    ),
                    (self._id(key_id), self._id(stream), subject, key),
                )
                if curs.fetchall():
                    return key_id, key
                curs.execute(
                    self._sql(
                        "SELECT key_id, key FROM {keys} WHERE stream_id = %s AND key IS NOT NULL"
                    ),
                    (self._id(stream),),
                )
                row = curs.fetchone()
            if row is not None:
                return UUID(str(row["key_id"])), bytes(row["key"])
        raise RuntimeError(f"no data key could be made for stream {stream}")

    def key(self, key_id: UUID) -> bytes | None:
        with self._cursor() as curs:
            curs.execute(self._sql("SELECT key FROM {keys} WHERE key_id = %s"), (self._id(key_id),))
            row = curs.fetchone()
        return None if row is None or row["key"] is None else bytes(row["key"])

    def live_key_ids(self, subject: str) -> list[UUID]:
        with self._cursor() as curs:
            curs.execute(
                self._sql(
                    "SELECT key_id FROM {keys} WHERE subject = %s AND key IS NOT NULL "
                    "ORDER BY created_at, key_id"
                ),
                (subject,),
            )
            return [UUID(str(r["key_id"])) for r in curs.fetchall()]

    def erase(self, key_ids: Sequence[UUID]) -> list[UUID]:
        if not key_ids:
            return []
        now = "now()" if self.postgres else "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"
        params: list[Any]
        with self._cursor() as curs:
            if self.postgres:
                where, params = "key_id = ANY(%s)", [list(key_ids)]
            else:
                # Freed space in the page is overwritten with zeros.
                curs.execute("PRAGMA secure_delete = ON")
                where, params = (
                    f"key_id IN ({', '.join('?' * len(key_ids))})",
                    [k.hex for k in key_ids],
                )
            curs.execute(
                self._sql(
                    f"UPDATE {{keys}} SET key = NULL, erased_at = {now} "
                    f"WHERE {where} AND key IS NOT NULL"
                ),
                params,
            )
            # Every named key's stream, erased now or by an interrupted earlier try.
            curs.execute(
                self._sql(f"SELECT DISTINCT stream_id FROM {{keys}} WHERE {where}"), params
            )
            return [UUID(str(r["stream_id"])) for r in curs.fetchall()]

    def scrub(self) -> None:
        """Rewrites the key table's files, so destroyed keys (and the snapshots deleted
        with them) leave them: PostgreSQL keeps an updated row's old version until
        vacuumed, SQLite keeps the old pages in its write-ahead log until a checkpoint.
        Best effort: what cannot be done now is logged and left to the database's own
        vacuum and checkpoints (docs/privacy.md)."""
        if self.postgres:
            self._vacuum_full()
        else:
            self._checkpoint()

    def _vacuum_full(self) -> None:
        with self.datastore.get_connection() as conn:
            try:
                # The whole table is copied under an exclusive lock, which every key
                # lookup waits for: never wait long for it.
                conn.execute(f"SET lock_timeout = '{SCRUB_LOCK_SECONDS}s'")
                conn.execute(self._sql("VACUUM FULL {keys}"))
            except psycopg.errors.LockNotAvailable:
                _log.warning("erasure: the key table is busy; its old rows stay until vacuumed")
            finally:
                conn.execute("RESET lock_timeout")

    def _checkpoint(self) -> None:
        # On the writer connection and outside a transaction; a reader in another
        # connection holds the checkpoint back, so it is tried again for a while.
        for attempt in range(SCRUB_ATTEMPTS):
            with self.datastore.get_connection(commit=True) as conn:
                curs = conn.cursor()
                curs.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                busy = curs.fetchone()[0]
            if not busy:
                return
            time.sleep(0.05 * (attempt + 1))
        _log.warning("erasure: readers kept the SQLite log; the next checkpoint clears it")

    def erased_mark(self) -> str:
        with self._cursor() as curs:
            # The count too: two erasures in the same millisecond still differ.
            curs.execute(
                self._sql("SELECT count(erased_at) AS n, max(erased_at) AS last FROM {keys}")
            )
            row = curs.fetchone()
        return f"{row['n']}/{row['last']}"

    def erased_ids(self) -> set[UUID]:
        with self._cursor() as curs:
            curs.execute(self._sql("SELECT key_id FROM {keys} WHERE key IS NULL"))
            return {UUID(str(r["key_id"])) for r in curs.fetchall()}
