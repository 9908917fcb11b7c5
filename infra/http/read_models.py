"""The read side as the API sees it: where read models live, how they are kept up to
date, how fresh they are, and the bounded wait for ``?min_position=``.

Modes:
- ``embedded`` (no database URL): SQLite read models beside the event store, fed by a
  background thread of the API process from the notification log;
- ``inline`` (PostgreSQL, no Kafka): the same, into PostgreSQL tables, woken by the
  event store's LISTEN/NOTIFY;
- ``kafka`` (PostgreSQL and Kafka): `dealledger project` maintains them.

Queries only ever read; none feeds a read model. A read model's freshness is the
ledger position up to which every event has been applied to it. A query with
``min_position`` waits (bounded by `wait_seconds`) until that position is applied,
then gives up with `ReadModelBehind`; a position beyond the ledger head was never
written and is refused at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Literal, Protocol, TypeVar

from commands.ledger import DealLedger
from domain.errors import InvalidInput
from infra.settings import Settings
from infra.store.databases import Database, PostgresDatabase
from projections.read_models import PROJECTION_NAMES, projection_position
from projections.store import ReadStore

T = TypeVar("T")
Mode = Literal["embedded", "inline", "kafka"]
LEDGER = "ledger"


class ReadFeed(Protocol):
    """What keeps read models fed in-process from the ledger (embedded and inline
    modes). The composition root hands one in (`Wiring.read_feed`), so the API never
    imports the consumers that implement it."""

    def ensure_tables(self) -> None:
        """The read-model tables and the fed-position table (idempotent)."""

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def wake(self) -> None:
        """Something was written: feed now rather than at the next poll."""

    def wait_for(self, position: int, timeout: float) -> bool:
        """Waits until `position` is fed (at most `timeout` seconds)."""

    def position(self, store: ReadStore) -> int:
        """Every event up to this ledger position has been fed."""


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
        settings: Settings,
        *,
        feed: Callable[[], ReadFeed] | None = None,
    ) -> None:
        self.db = db
        self._ledger = ledger
        self.mode = mode
        self.settings = settings
        self.wait_seconds = settings.api_read_wait_seconds
        self._new_feed = feed
        self._follower: ReadFeed | None = None
        self._started = False
        self._lock = threading.Lock()

    # -- keeping up (never from a query) -------------------------------------------

    def start(self) -> None:
        """Without Kafka, starts feeding in the background (tables first). Safe to call
        again; a failure (the database away) is retried on the next call."""
        with self._lock:
            if self._started:
                return
            if self._new_feed is not None:
                feed = self._new_feed()
                feed.ensure_tables()
                feed.start()
                self._follower = feed
            self._started = True

    # -- reading ------------------------------------------------------------------

    @contextmanager
    def reading(self) -> Iterator[ReadStore]:
        self.start()
        with self.db.reading() as store:
            yield store

    def query(
        self, projection: str, min_position: int | None, read: Callable[[ReadStore], T]
    ) -> tuple[T, int]:
        """`read(store)` once `projection` has applied `min_position`; with its position."""
        self._must_exist(min_position)
        self.start()
        if min_position is not None:
            self._wait_for(projection, min_position)
        with self.db.reading() as store:
            return read(store), self._position(store, projection)

    def _wait_for(self, projection: str, wanted: int) -> None:
        if wanted <= 0:
            return  # positions start at 1: nothing to wait for
        deadline = time.monotonic() + self.wait_seconds
        if self._follower is not None:
            self._follower.wake()
            if self._follower.wait_for(wanted, self.wait_seconds):
                return
        else:
            pause = 0.005
            while True:
                with self.db.reading() as store:
                    if self._applied_through(store, wanted):
                        return
                if time.monotonic() >= deadline:
                    break
                time.sleep(max(0.0, min(pause, deadline - time.monotonic())))
                pause = min(pause * 2, 0.1)
        with self.db.reading() as store:
            position = self._position(store, projection)
        raise ReadModelBehind(projection, position, wanted, self.wait_seconds)

    def _applied_through(self, store: ReadStore, wanted: int) -> bool:
        from infra.kafka.relay import RELAY_NAME
        from infra.store.positions import applied_through

        if not store.exists("relay_marks"):
            return False  # nothing published yet
        return applied_through(
            store.connection,  # type: ignore[arg-type]
            RELAY_NAME,
            self.settings.projector_group,
            self.settings.events_topic,
            wanted,
        )

    def _position(self, store: ReadStore, projection: str) -> int:
        """Every event up to this ledger position has been applied to `projection`."""
        if self._follower is not None:
            return self._follower.position(store)
        if isinstance(self.db, PostgresDatabase) and store.exists("relay_marks"):
            from infra.kafka.relay import RELAY_NAME
            from infra.store.positions import applied_position

            found = applied_position(
                store.connection,  # type: ignore[arg-type]
                RELAY_NAME,
                self.settings.projector_group,
                self.settings.events_topic,
            )
            if found:
                return found
        return projection_position(store, projection)

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
        """Each read model's applied position."""
        with self.reading() as store:
            return {p: self._position(store, p) for p in PROJECTION_NAMES}

    def stop_feeding(self, *, for_good: bool = False) -> None:
        """Stops the background feed (at shutdown, until the next start; `for_good`:
        never to start again, as when another process is meant to feed)."""
        with self._lock:
            self._started = for_good
            if self._follower is not None:
                self._follower.stop()
                self._follower = None

    def close(self) -> None:
        self.stop_feeding()
        self.db.close()
