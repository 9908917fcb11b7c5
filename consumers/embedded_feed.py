"""Without Kafka, the read models are fed in-process from the ledger's notification log:
into SQLite read models (the embedded default) or into the PostgreSQL ones (the API
with a database but no Kafka). The same batch engine applies the same messages as the
Kafka projector does (projections.engine; the messages are encoded exactly as the
relay publishes them). Each batch commits in one transaction with the fed position,
as the Kafka consumer does with its offsets; on PostgreSQL the position row is
locked, so processes sharing a database feed one at a time.

`feed()` catches up once; `Follower` keeps feeding in a background thread (the API
process runs one), woken by `wake()` after a local write, by PostgreSQL's
LISTEN/NOTIFY of new events, or at the latest after `poll_seconds`.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

from commands.ledger import DealLedger
from projections.contract.encoding import Encoder
from projections.contract.models import contract
from projections.engine import BatchEngine, Projection
from projections.read_models import PROJECTIONS, create_tables
from projections.store import ReadStore

FEED_DDL = "CREATE TABLE IF NOT EXISTS feed_positions (name TEXT PRIMARY KEY, position BIGINT)"


@contextmanager
def _transaction(store: ReadStore) -> Iterator[None]:
    # sqlite3's `with conn:` commits; psycopg's would close the connection instead.
    if store.dialect == "postgres":
        with store.connection.transaction():  # type: ignore[attr-defined]
            yield
    else:
        with store.connection:  # type: ignore[attr-defined]
            yield


def ensure_feed_tables(store: ReadStore, projections: Sequence[Projection] = PROJECTIONS) -> None:
    """The read-model tables and the fed-position table (idempotent)."""
    if store.dialect == "postgres":
        from infra.store.ddl import serialised_ddl

        with serialised_ddl(store.connection), _transaction(store):  # type: ignore[arg-type]
            create_tables(store, projections)
            store.execute(FEED_DDL)
    else:
        with _transaction(store):
            create_tables(store, projections)
            store.execute(FEED_DDL)


def open_read_store(path: Path) -> tuple[sqlite3.Connection, ReadStore]:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path)
    store = ReadStore(conn, "sqlite")
    ensure_feed_tables(store)
    return conn, store


def fed_position(store: ReadStore, name: str = "embedded") -> int:
    value = store.scalar("SELECT position FROM feed_positions WHERE name = %s", (name,))
    return 0 if value is None else int(value)


def feed(
    ledger: DealLedger,
    store: ReadStore,
    *,
    projections: Sequence[Projection] = PROJECTIONS,
    batch_size: int = 1000,
    name: str = "embedded",
) -> int:
    """Apply every notification after the fed position; returns how many were read."""
    engine = BatchEngine(projections)
    encoder = Encoder(ledger.mapper)
    lock = " FOR UPDATE" if store.dialect == "postgres" else ""
    total = 0
    while True:
        with _transaction(store):
            store.execute(
                "INSERT INTO feed_positions (name, position) VALUES (%s, 0) "
                "ON CONFLICT (name) DO NOTHING",
                (name,),
            )
            start = int(
                store.scalar(f"SELECT position FROM feed_positions WHERE name = %s{lock}", (name,))
            )
            notifications = ledger.recorder.select_notifications(
                start=start, limit=batch_size, inclusive_of_start=False
            )
            if not notifications:
                return total
            # The ledger's own events: one that breaks the contract is a bug, not a
            # record to skip, so it is raised rather than passed over.
            engine.apply(store, [encoder.message(n) for n in notifications])
            store.execute(
                "UPDATE feed_positions SET position = %s WHERE name = %s",
                (notifications[-1].id, name),
            )
        total += len(notifications)


class Follower:
    """Keeps read models fed from the notification log in a background thread."""

    def __init__(
        self,
        ledger: Callable[[], DealLedger],
        store: Callable[[], AbstractContextManager[ReadStore]],
        log: Any,
        *,
        name: str = "embedded",
        poll_seconds: float = 1.0,
        listen: Callable[[threading.Event, float], None] | None = None,
        after_catch_up: Callable[[], None] | None = None,
    ) -> None:
        self._ledger = ledger
        self._store = store
        self.log = log
        self.name = name
        self.poll_seconds = poll_seconds
        self._listen = listen
        self._after_catch_up = after_catch_up
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._fed = threading.Condition()
        self.fed = 0
        self.failures = 0

    def wake(self) -> None:
        """Something was written: feed now rather than at the next poll."""
        self._wake.set()

    def ensure_tables(self) -> None:
        with self._store() as store:
            ensure_feed_tables(store)

    def position(self, store: ReadStore) -> int:
        return fed_position(store, self.name)

    def start(self) -> None:
        contract()  # built once, before the first event needs it
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"feed-{self.name}", daemon=True)
            self._thread.start()
            if self._listen is not None:
                threading.Thread(
                    target=self._listen, args=(self._stop, self.poll_seconds), daemon=True
                ).start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def catch_up(self) -> int:
        with self._store() as store:
            ensure_feed_tables(store)
            count = feed(self._ledger(), store, name=self.name)
            position = fed_position(store, self.name)
        with self._fed:
            self.fed = position
            self._fed.notify_all()
        return count

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                self.catch_up()
                if self._after_catch_up is not None:
                    self._after_catch_up()
                self.failures = 0
            except Exception as exc:  # the database may be away; try again later
                self.failures += 1
                self.log.warning("read-model feed failed; retrying", error=repr(exc))
            self._wake.wait(self.poll_seconds if not self.failures else min(5.0, self.failures))

    def wait_for(self, position: int, timeout: float) -> bool:
        """Waits until `position` is fed (at most `timeout` seconds)."""
        with self._fed:
            return self._fed.wait_for(lambda: self.fed >= position, timeout)
