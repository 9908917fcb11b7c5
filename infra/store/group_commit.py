"""Group commit: appends that arrive together are written together.

Threads that save at the same moment (API workers, the command consumer's partition
workers) each hand their append here. The first of them to find no write in flight
becomes the leader: it takes every append waiting (its own included) and writes them
in ONE statement, one transaction, so the table lock, the round trip and the commit's
fsync are paid once for the lot. The others wait for its answer, and one of them
leads the next write. A lone append is written at once; nothing waits for company.

Each append stays atomic and isolated: the statement gives each one a savepoint, so
an append that loses an optimistic race (a version already taken) is rolled back on
its own and answered with IntegrityError, while the others commit. An error that is
not such a conflict makes the leader write each append of the batch on its own, so
only the one at fault fails.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from eventsourcing.persistence import IntegrityError, StoredEvent

# An append's positions, or None when it lost a race; one list per append, in order.
WriteGroups = Callable[[Sequence[Sequence[StoredEvent]]], list[list[int] | None]]

# Bounds one write: a batch stops growing at this many appends or events.
MAX_APPENDS = 64
MAX_EVENTS = 5000


@dataclass
class _Append:
    events: Sequence[StoredEvent]
    done: bool = False
    positions: list[int] = field(default_factory=list)
    error: BaseException | None = None


class GroupCommit:
    def __init__(self, write_groups: WriteGroups) -> None:
        self._write_groups = write_groups
        self._changed = threading.Condition()
        self._waiting: list[_Append] = []
        self._writing = False
        self.writes = 0  # statements written (for tests and metrics)
        self.appends = 0  # appends written

    def append(self, events: Sequence[StoredEvent]) -> list[int]:
        """Write `events` atomically (with any appends waiting alongside); returns their
        positions, or raises IntegrityError when one of their versions is taken."""
        mine = _Append(events)
        with self._changed:
            self._waiting.append(mine)
        while True:
            with self._changed:
                while not mine.done and self._writing:
                    self._changed.wait()
                if mine.done:
                    break
                # No write in flight: this thread leads the next one (a batch may stop
                # short of its own append; then it leads again).
                self._writing = True
                batch = self._take()
            try:
                self._write(batch)
            except BaseException as exc:
                # Whatever went wrong, no append of the batch is left waiting forever.
                for one in batch:
                    if not one.done:
                        self._settle(one, None, exc)
            finally:
                with self._changed:
                    self._writing = False
                    self._changed.notify_all()
        return self._answer(mine)

    def _take(self) -> list[_Append]:
        batch: list[_Append] = []
        events = 0
        while self._waiting and len(batch) < MAX_APPENDS:
            nxt = self._waiting[0]
            if batch and events + len(nxt.events) > MAX_EVENTS:
                break
            batch.append(self._waiting.pop(0))
            events += len(nxt.events)
        return batch

    def _write(self, batch: list[_Append]) -> None:
        try:
            results = self._write_groups([a.events for a in batch])
        except BaseException as exc:
            if len(batch) == 1:
                self._settle(batch[0], None, exc)
            else:
                # Not a lost race (those are answered per append): find the culprit by
                # writing each on its own.
                for one in batch:
                    self._write([one])
            return
        self.writes += 1
        self.appends += len(batch)
        for one, positions in zip(batch, results, strict=True):
            lost = IntegrityError("a version of this append was already taken")
            self._settle(one, positions, None if positions is not None else lost)

    def _settle(
        self, one: _Append, positions: list[int] | None, error: BaseException | None
    ) -> None:
        one.positions = positions or []
        one.error = error
        one.done = True

    @staticmethod
    def _answer(mine: _Append) -> list[int]:
        if mine.error is not None:
            raise mine.error
        return mine.positions
