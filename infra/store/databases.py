"""Connections the API uses besides the event store: read models and API keys.

`Database` hands out a `ReadStore` (dialect-neutral SQL with ``%s`` placeholders)
for one unit of work. On PostgreSQL it draws from a small connection pool in the
ledger's schema; on SQLite it serialises one connection with a lock, because a
sqlite3 connection must not be used by two threads at once.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from projections.store import ReadStore

CONNECT_TIMEOUT_SECONDS = 3


def read_model_path(event_store_path: Path) -> Path:
    """Where the embedded read models live: a SQLite file beside the event store."""
    return event_store_path.with_name(f"{event_store_path.stem}-read-models.sqlite")


POOL_TIMEOUT_SECONDS = 2.0


class Database:
    dialect: str

    @contextmanager
    def transaction(self) -> Iterator[ReadStore]:
        """A store whose statements commit together when the block ends without error."""
        raise NotImplementedError
        yield  # pragma: no cover

    @contextmanager
    def reading(self) -> Iterator[ReadStore]:
        """A store for reads only."""
        raise NotImplementedError
        yield  # pragma: no cover

    def ping(self) -> None:
        with self.reading() as store:
            store.scalar("SELECT 1")

    def close(self) -> None:
        raise NotImplementedError


class SqliteDatabase(Database):
    dialect = "sqlite"

    def __init__(self, path: Path, *, wal: bool = False) -> None:
        self.path = path
        self.wal = wal
        self.lock = threading.RLock()
        self._connection: sqlite3.Connection | None = None

    @property
    def connection(self) -> sqlite3.Connection:
        """The one connection, (re)opened on first use; hold `lock` while using it."""
        with self.lock:
            if self._connection is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._connection = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
                if self.wal:
                    # Readers go on while the feed writes (a read-model file only).
                    self._connection.execute("PRAGMA journal_mode=WAL")
            return self._connection

    @property
    def store(self) -> ReadStore:
        return ReadStore(self.connection, "sqlite")

    @contextmanager
    def transaction(self) -> Iterator[ReadStore]:
        with self.lock, self.connection:
            yield self.store

    @contextmanager
    def reading(self) -> Iterator[ReadStore]:
        with self.lock:
            try:
                yield self.store
            finally:
                if self.connection.in_transaction:
                    self.connection.rollback()

    def close(self) -> None:
        """Closes the connection; the next use opens a new one."""
        with self.lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None


class PostgresDatabase(Database):
    dialect = "postgres"

    def __init__(self, conninfo: str, *, max_size: int = 10) -> None:
        self.conninfo = conninfo
        self.max_size = max_size
        self._pool: Any = None
        self._lock = threading.Lock()

    def _opened_pool(self) -> Any:
        with self._lock:
            if self._pool is None:
                from psycopg_pool import ConnectionPool

                self._pool = ConnectionPool(
                    self.conninfo,
                    min_size=1,
                    max_size=self.max_size,
                    timeout=POOL_TIMEOUT_SECONDS,
                    kwargs={"autocommit": True, "connect_timeout": CONNECT_TIMEOUT_SECONDS},
                    open=False,
                    name="dealledger-api",
                )
                self._pool.open(wait=False)
            return self._pool

    @contextmanager
    def connection(self) -> Iterator[Any]:
        """A pooled autocommit psycopg connection (the pool opens on first use)."""
        with self._opened_pool().connection() as conn:
            yield conn

    @contextmanager
    def transaction(self) -> Iterator[ReadStore]:
        with self.connection() as conn, conn.transaction():
            yield ReadStore(conn, "postgres")

    @contextmanager
    def reading(self) -> Iterator[ReadStore]:
        with self.connection() as conn:
            yield ReadStore(conn, "postgres")

    def close(self) -> None:
        """Closes the pool; the next use opens a new one."""
        with self._lock:
            if self._pool is not None:
                self._pool.close()
                self._pool = None
