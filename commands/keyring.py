"""Data keys for personal fields: the key table's port, and this process's keyring.

The store keeps one live key per stream, tagged with the stream's data subject
(infra/store/subject_keys.py on PostgreSQL and SQLite; `MemoryKeyTable` for a ledger
kept in memory). A `Keyring` caches keys for this process and drops every cached key
(and calls its `on_erasure` hooks, e.g. to empty an aggregate cache) within
`RECHECK_SECONDS` of an erasure made by any process.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Protocol
from uuid import UUID, uuid4

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_BYTES = 32
_CACHED = 100_000
_UNKNOWN = object()

Key = tuple[UUID, bytes]  # (key id, key)


def new_key() -> bytes:
    return os.urandom(KEY_BYTES)


class KeyTable(Protocol):
    """Where the keys are kept; every method is its own short transaction."""

    def live_keys(self, streams: Iterable[UUID]) -> dict[UUID, Key]: ...

    def create(self, stream: UUID, subject: str) -> Key:
        """The stream's live key: a new one unless another writer created it first."""
        ...

    def key(self, key_id: UUID) -> bytes | None:
        """None once erased (or never known)."""
        ...

    def erase(self, subject: str) -> int:
        """Destroys every live key of `subject`; how many there were."""
        ...

    def erased_mark(self) -> str:
        """Changes whenever a key is erased: readers holding keys check it."""
        ...

    def erased_ids(self) -> set[UUID]:
        """Every erased key (few: erasures are rare)."""
        ...


class MemoryKeyTable:
    """The key table of a ledger kept in memory (unit tests)."""

    def __init__(self) -> None:
        self.rows: dict[UUID, tuple[UUID, str, bytes | None]] = {}
        self.erasures = 0

    def live_keys(self, streams: Iterable[UUID]) -> dict[UUID, Key]:
        wanted = set(streams)
        return {
            stream: (key_id, key)
            for key_id, (stream, _, key) in self.rows.items()
            if stream in wanted and key is not None
        }

    def create(self, stream: UUID, subject: str) -> Key:
        live = self.live_keys([stream])
        if stream in live:
            return live[stream]
        key_id, key = uuid4(), new_key()
        self.rows[key_id] = (stream, subject, key)
        return key_id, key

    def key(self, key_id: UUID) -> bytes | None:
        row = self.rows.get(key_id)
        return None if row is None else row[2]

    def erase(self, subject: str) -> int:
        erased = [k for k, (_, s, key) in self.rows.items() if s == subject and key is not None]
        for key_id in erased:
            stream, _, _ = self.rows[key_id]
            self.rows[key_id] = (stream, subject, None)
        self.erasures += bool(erased)
        return len(erased)

    def erased_mark(self) -> str:
        return str(self.erasures)

    def erased_ids(self) -> set[UUID]:
        return {key_id for key_id, (_, _, key) in self.rows.items() if key is None}


class Keyring:
    """This process's view of the key table: live keys by stream, keys by id."""

    RECHECK_SECONDS = 1.0

    def __init__(self, table: KeyTable | None = None) -> None:
        self.table: KeyTable = table or MemoryKeyTable()
        self.on_erasure: list[Callable[[], None]] = []
        self._live: dict[UUID, Key] = {}
        self._ciphers: dict[UUID, AESGCM | None] = {}
        self._erased: set[UUID] | None = None
        self._mark: str | None = None
        self._checked = 0.0

    def bind(self, table: KeyTable) -> None:
        self.table = table
        self.forget()

    # -- keeping up with erasures -----------------------------------------------

    def refresh(self, *, now: bool = False) -> None:
        """Drops what this process holds if a key was erased since it last looked."""
        moment = time.monotonic()
        if not now and moment - self._checked < self.RECHECK_SECONDS:
            return
        self._checked = moment
        mark = self.table.erased_mark()
        if self._mark is not None and mark != self._mark:
            self.forget()
        self._mark = mark

    def forget(self) -> None:
        self._live.clear()
        self._ciphers.clear()
        self._erased = None
        for hook in self.on_erasure:
            hook()

    # -- writing -------------------------------------------------------------------

    def ensure(self, subjects: Mapping[UUID, str], new: Iterable[UUID] = ()) -> None:
        """Every stream in `subjects` (stream -> its data subject) has a live key;
        streams in `new` are known to have none yet (they are being created)."""
        self.refresh()
        missing = [s for s in subjects if s not in self._live]
        if not missing:
            return
        created = set(new)
        found = self.table.live_keys(s for s in missing if s not in created)
        for stream in missing:
            key = found.get(stream) or self.table.create(stream, subjects[stream])
            self._remember(stream, key)

    def live(self, stream: UUID) -> Key | None:
        key = self._live.get(stream)
        if key is None:
            key = self.table.live_keys([stream]).get(stream)
            if key is not None:
                self._remember(stream, key)
        return key

    def _remember(self, stream: UUID, key: Key) -> None:
        if len(self._live) >= _CACHED:
            self._live.pop(next(iter(self._live)))
        self._live[stream] = key

    # -- reading -------------------------------------------------------------------

    def cipher(self, key_id: UUID) -> AESGCM | None:
        """The key's cipher; None once the key is erased."""
        self.refresh()
        cached = self._ciphers.get(key_id, _UNKNOWN)
        if cached is not _UNKNOWN:
            return cached  # type: ignore[return-value]
        key = self.table.key(key_id)
        cipher = None if key is None else AESGCM(key)
        if len(self._ciphers) >= _CACHED:
            self._ciphers.pop(next(iter(self._ciphers)))
        self._ciphers[key_id] = cipher
        return cipher

    def is_erased(self, key_id: UUID) -> bool:
        """Answered from memory (one query per erasure made anywhere), for the relay."""
        self.refresh()
        if self._erased is None:
            self._erased = self.table.erased_ids()
        return key_id in self._erased

    def erase(self, subject: str) -> int:
        erased = self.table.erase(subject)
        self.forget()
        self.refresh(now=True)
        return erased
