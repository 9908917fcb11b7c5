"""Group commit's leader/follower hand-off, with a write function that records what
it was given (the statement itself is tested on PostgreSQL in tests/integration)."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from uuid import uuid4

from eventsourcing.persistence import IntegrityError, StoredEvent

from infra.store.group_commit import MAX_APPENDS, GroupCommit


def events(count: int, version: int = 1) -> list[StoredEvent]:
    stream = uuid4()
    return [StoredEvent(stream, version + i, "t", b"{}") for i in range(count)]


class Store:
    """Numbers appends like the database does; a version seen before is a lost race."""

    def __init__(self, delay: float = 0.0, fail_on: str | None = None) -> None:
        self.delay = delay
        self.fail_on = fail_on
        self.position = 0
        self.taken: set[tuple[object, int]] = set()
        self.batches: list[int] = []
        self.lock = threading.Lock()

    def write(self, groups: Sequence[Sequence[StoredEvent]]) -> list[list[int] | None]:
        with self.lock:
            if any(e.topic == self.fail_on for group in groups for e in group):
                raise ValueError("refused by the database")
            time.sleep(self.delay)
            self.batches.append(len(groups))
            results: list[list[int] | None] = []
            for group in groups:
                keys = [(e.originator_id, e.originator_version) for e in group]
                if any(k in self.taken for k in keys):
                    results.append(None)
                    continue
                self.taken.update(keys)
                positions = []
                for _ in group:
                    self.position += 1
                    positions.append(self.position)
                results.append(positions)
            return results


def test_a_lone_append_is_written_at_once_on_its_own() -> None:
    store = Store()
    commit = GroupCommit(store.write)
    assert commit.append(events(3)) == [1, 2, 3]
    assert store.batches == [1]


def test_concurrent_appends_share_writes_and_each_gets_its_own_positions() -> None:
    store = Store(delay=0.01)
    commit = GroupCommit(store.write)
    answers: dict[int, list[int]] = {}
    barrier = threading.Barrier(24)

    def client(n: int) -> None:
        barrier.wait()
        answers[n] = commit.append(events(n % 3 + 1))

    threads = [threading.Thread(target=client, args=(n,)) for n in range(24)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(answers) == 24
    assert sorted(p for ps in answers.values() for p in ps) == list(range(1, store.position + 1))
    for n, positions in answers.items():
        assert len(positions) == n % 3 + 1
        assert positions == list(range(positions[0], positions[0] + len(positions)))
    assert len(store.batches) < 24  # some writes carried several appends
    assert max(store.batches) <= MAX_APPENDS


def test_a_lost_race_fails_that_append_alone() -> None:
    store = Store(delay=0.01)
    commit = GroupCommit(store.write)
    taken = events(1)
    commit.append(taken)
    outcomes: dict[str, object] = {}
    barrier = threading.Barrier(2)

    def append(name: str, batch: list[StoredEvent]) -> None:
        barrier.wait()
        try:
            outcomes[name] = commit.append(batch)
        except IntegrityError as exc:
            outcomes[name] = exc

    threads = [
        threading.Thread(target=append, args=("again", taken)),
        threading.Thread(target=append, args=("fresh", events(2))),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert isinstance(outcomes["again"], IntegrityError)
    assert isinstance(outcomes["fresh"], list)
    assert len(outcomes["fresh"]) == 2


def test_an_append_the_database_refuses_fails_alone_and_the_others_commit() -> None:
    store = Store(delay=0.02, fail_on="poison")
    commit = GroupCommit(store.write)
    outcomes: dict[int, object] = {}
    barrier = threading.Barrier(6)

    def append(n: int) -> None:
        batch = events(1)
        if n == 3:
            batch = [StoredEvent(uuid4(), 1, "poison", b"{}")]
        barrier.wait()
        try:
            outcomes[n] = commit.append(batch)
        except ValueError as exc:
            outcomes[n] = exc

    threads = [threading.Thread(target=append, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert isinstance(outcomes[3], ValueError)
    assert all(isinstance(outcomes[n], list) for n in range(6) if n != 3), outcomes


def test_a_write_that_answers_wrongly_fails_its_appends_instead_of_leaving_them_waiting() -> None:
    def broken(groups: Sequence[Sequence[StoredEvent]]) -> list[list[int] | None]:
        time.sleep(0.01)
        return []  # no answer for any append

    commit = GroupCommit(broken)
    outcomes: list[BaseException] = []

    def append() -> None:
        try:
            commit.append(events(1))
        except BaseException as exc:  # collected and asserted below
            outcomes.append(exc)

    threads = [threading.Thread(target=append) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert not any(thread.is_alive() for thread in threads)
    assert len(outcomes) == 4
