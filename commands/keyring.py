"""Data keys for personal fields: the key table's port, and this process's keyring.

The store keeps one live key per stream, tagged with the stream's data subject
(infra/store/subject_keys.py on PostgreSQL and SQLite; `MemoryKeyTable` for a ledger
kept in memory). A `Keyring` caches keys for this process and drops every cached key
(and calls its `on_erasure` hooks, e.g. to empty an aggregate cache) within
`RECHECK_SECONDS` of an erasure made by any process, at once for one made here.
Each drop starts a new `generation`: whatever was read from the table (or decoded with
its keys) before the drop is not cached after it, so no erased key or text comes back.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Protocol
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

    def live_key_ids(self, subject: str) -> list[UUID]:
        """The keys of `subject` not erased yet, oldest first."""
        ...

    def erase(self, key_ids: Sequence[UUID]) -> list[UUID]:
        """Destroys these keys (those not destroyed yet); the streams of all of them."""
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
        self.erased = 0

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

    def live_key_ids(self, subject: str) -> list[UUID]:
        return [k for k, (_, s, key) in self.rows.items() if s == subject and key is not None]

    def erase(self, key_ids: Sequence[UUID]) -> list[UUID]:
        streams = []
        for key_id in key_ids:
            row = self.rows.get(key_id)
            if row is not None:
                self.erased += row[2] is not None
                self.rows[key_id] = (row[0], row[1], None)
                streams.append(row[0])
        return sorted(set(streams))

    def erased_mark(self) -> str:
        return str(self.erased)

    def erased_ids(self) -> set[UUID]:
        return {key_id for key_id, (_, _, key) in self.rows.items() if key is None}


class Keyring:
    """This process's view of the key table: live keys by stream, keys by id."""

    RECHECK_SECONDS = 1.0

    def __init__(self, table: KeyTable | None = None) -> None:
        self.table: KeyTable = table or MemoryKeyTable()
        self.on_erasure: list[Callable[[], None]] = []
        # Held while caches change; callers hold it to cache what they decoded
        # (`caching`), so nothing read before a drop is cached after it.
        self.lock = threading.RLock()
        self.generation = 0
        self._live: dict[UUID, Key] = {}
        # Whose each stream is, as `ensure` was told: not secret, kept across drops.
        self._subjects: dict[UUID, str] = {}
        self._ciphers: dict[str, AESGCM | None] = {}  # by the key id's hex, as stored
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
        with self.lock:
            if self._mark is not None and mark != self._mark:
                self.forget()
            self._mark = mark

    def forget(self) -> None:
        with self.lock:
            self.generation += 1
            self._live.clear()
            self._ciphers.clear()
            self._erased = None
            for hook in self.on_erasure:
                hook()

    @contextmanager
    def caching(self, generation: int) -> Iterator[bool]:
        """Whether what was read in `generation` may still be cached (held until the
        caller has cached it)."""
        with self.lock:
            yield generation == self.generation

    def _keep(self, cache: dict[Any, Any], key: Any, value: Any, generation: int) -> None:
        """Caches unless a drop came since `generation` (-1: whatever came)."""
        with self.caching(generation) as current:
            if current or generation < 0:
                if len(cache) >= _CACHED:
                    cache.pop(next(iter(cache)))
                cache[key] = value

    # -- writing -------------------------------------------------------------------

    def ensure(self, subjects: Mapping[UUID, str], new: Iterable[UUID] = ()) -> None:
        """Every stream in `subjects` (stream -> its data subject) has a live key;
        streams in `new` are known to have none yet (they are being created)."""
        self.refresh()
        missing = [s for s in subjects if s not in self._live]
        if not missing:
            return
        generation = self.generation
        for stream in missing:
            self._keep(self._subjects, stream, subjects[stream], -1)
        created = set(new)
        found = self.table.live_keys(s for s in missing if s not in created)
        for stream in missing:
            key = found.get(stream) or self.table.create(stream, subjects[stream])
            self._keep(self._live, stream, key, generation)

    def key_for(self, stream: UUID) -> Key | None:
        """The stream's live key, made anew when an erasure destroyed it since the
        stream's save began (`ensure` said whose it is); None for a stream never
        ensured."""
        key = self.live(stream)
        subject = self._subjects.get(stream)
        if key is None and subject is not None:
            self.ensure({stream: subject})
            key = self.live(stream)
        return key

    def live(self, stream: UUID) -> Key | None:
        key = self._live.get(stream)
        if key is None:
            generation = self.generation
            key = self.table.live_keys([stream]).get(stream)
            if key is not None:
                self._keep(self._live, stream, key, generation)
        return key

    # -- reading -------------------------------------------------------------------

    def cipher(self, key_id: UUID | str) -> AESGCM | None:
        """The key's cipher (by id, or the id's hex as a sealed value stores it); None
        once the key is erased."""
        self.refresh()
        key_hex = key_id if isinstance(key_id, str) else key_id.hex
        cached = self._ciphers.get(key_hex, _UNKNOWN)
        if cached is not _UNKNOWN:
            return cached  # type: ignore[return-value]
        generation = self.generation
        key = self.table.key(UUID(hex=key_hex))
        cipher = None if key is None else AESGCM(key)
        self._keep(self._ciphers, key_hex, cipher, generation)
        return cipher

    def is_erased(self, key_id: UUID) -> bool:
        """Answered from memory (one query per erasure made anywhere), for the relay."""
        self.refresh()
        erased = self._erased
        if erased is None:
            generation = self.generation
            erased = self.table.erased_ids()
            with self.caching(generation) as current:
                if current:
                    self._erased = erased
        return key_id in erased

    def erase(self, key_ids: Sequence[UUID]) -> list[UUID]:
        """Destroys the keys; the streams they were the keys of."""
        streams = self.table.erase(key_ids)
        self.forget()
        self.refresh(now=True)
        return streams
