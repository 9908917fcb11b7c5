"""The read side as the API sees it: where read models live, how they are kept up to
date, how fresh they are, and the bounded wait for ``?min_position=``.

Modes:
- ``embedded`` (no database URL): SQLite read models beside the event store, fed
  in-process from the notification log before each query;
- ``inline`` (PostgreSQL, no Kafka): the same, into PostgreSQL tables;
- ``kafka`` (PostgreSQL and Kafka): `dealledger project` maintains them; the API
  only reads them.

A read model's freshness is the highest ledger position applied to it. A query with
``min_position`` waits (polling, catching up where the API feeds) until that
position is applied, at most `wait_seconds`, then gives up with `ReadModelBehind`;
a position beyond the ledger head was never written and is refused at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Literal, Protocol, TypeVar

from commands.ledger import DealLedger
from domain.errors import InvalidInput
from infra.store.databases import Database, PostgresDatabase, SqliteDatabase
from projections.projector import PROJECTIONS, applied_version, projection_position
from projections.store import ReadStore

T = TypeVar("T")
Mode = Literal["embedded", "inline", "kafka"]
LEDGER = "ledger"


# The API's own feed position on PostgreSQL, apart from any embedded one.
API_FEED_NAME = "api-inline"


class ReadFeed(Protocol):
    """The read-side engine that feeds read models in-process from the ledger (the
    embedded and inline modes). The composition root hands it in
    (`Wiring.read_feed`), so the API does not import the consumers."""

    def ensure_feed_tables(self, store: ReadStore) -> None:
        """The read-model tables and the fed-position table (idempotent)."""

    def feed(self, ledger: DealLedger, store: ReadStore, *, name: str = ...) -> int:
        """Applies every notification after the fed position `name`."""


class ReadModelBehind(Exception):
    """The wanted position was not reached within the wait (503, Retry-After)."""

    def __init__(self, source: str, position: int, min_position: int, waited: float) -> None:
        super().__init__(
            f"{source} is at ledger position {position}; position {min_position} was not "
            f"reached within {waited:g} s"
        )
        self.source = source
        self.position = position
        self.min_position = min_position


class ReadModels:
    def __init__(
        self,
        db: Database,
        ledger: Callable[[], DealLedger],
        mode: Mode,
        wait_seconds: float,
        read_feed: ReadFeed,
    ) -> None:
        self.db = db
        self._ledger = ledger
        self._read_feed = read_feed
        self.mode = mode
        self.wait_seconds = wait_seconds
        self._feed_lock = threading.Lock()
        self._ready = False
        self._ready_lock = threading.Lock()

    # -- keeping up ---------------------------------------------------------------

    def _ensure_tables(self) -> None:
        if self._ready:
            return
        with self._ready_lock:
            if self._ready:
                return
            if isinstance(self.db, PostgresDatabase):
                with self.db.connection() as conn:
                    self._read_feed.ensure_feed_tables(ReadStore(conn, "postgres"))
            elif isinstance(self.db, SqliteDatabase):
                with self.db.lock:
                    self._read_feed.ensure_feed_tables(self.db.store)
            self._ready = True

    def catch_up(self) -> None:
        """Feeds the read models up to the ledger head where the API feeds them."""
        self._ensure_tables()
        if self.mode == "kafka":
            return
        ledger = self._ledger()
        with self._feed_lock:
            if isinstance(self.db, SqliteDatabase):
                with self.db.lock:
                    self._read_feed.feed(ledger, self.db.store)
            elif isinstance(self.db, PostgresDatabase):
                with self.db.connection() as conn:
                    self._read_feed.feed(ledger, ReadStore(conn, "postgres"), name=API_FEED_NAME)

    # -- reading ------------------------------------------------------------------

    def query(
        self, projection: str, min_position: int | None, read: Callable[[ReadStore], T]
    ) -> tuple[T, int]:
        """`read(store)` once `projection` has applied `min_position`; with its position."""
        self._must_exist(min_position)
        deadline = time.monotonic() + self.wait_seconds
        pause = 0.02
        while True:
            self.catch_up()
            with self.db.reading() as store:
                position = projection_position(store, projection)
                if min_position is None or self._reached(store, projection, position, min_position):
                    return read(store), position
            if time.monotonic() >= deadline:
                raise ReadModelBehind(projection, position, min_position, self.wait_seconds)
            time.sleep(max(0.0, min(pause, deadline - time.monotonic())))
            pause = min(pause * 2, 0.25)

    def _reached(self, store: ReadStore, projection: str, position: int, wanted: int) -> bool:
        if position < wanted:
            return False
        if self.mode != "kafka":
            return True  # fed in ledger order: every earlier position is applied too
        # Kafka keeps order per partition only: the highest applied position says
        # nothing of other partitions, so also check the event at `wanted` itself.
        found = self._ledger().recorder.select_notifications(start=wanted, limit=1)
        if not found or found[0].id != wanted:
            return True
        event = found[0]
        return applied_version(store, projection, event.originator_id) >= event.originator_version

    def ledger_position(self, min_position: int | None) -> int:
        """The ledger head (which includes `min_position`: the ledger is the source)."""
        return self._must_exist(min_position)

    def _must_exist(self, min_position: int | None) -> int:
        """The ledger head; refuses a position nobody has written yet.

        Commits become visible in position order, so once a client has been told a
        position, the head is at or past it: waiting for a later one is pointless."""
        head = self._ledger().recorder.max_notification_id() or 0
        if min_position is not None and min_position > head:
            raise InvalidInput(
                f"min_position {min_position} is beyond the ledger head {head}: "
                "no such position has been written",
                field="min_position",
                head=head,
            )
        return head

    def positions(self) -> dict[str, int]:
        """Each projection's applied position, without catching up first."""
        self._ensure_tables()
        with self.db.reading() as store:
            return {p: projection_position(store, p) for p in PROJECTIONS}

    def close(self) -> None:
        self.db.close()
