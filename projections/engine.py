"""The batch engine every read model runs on: pure folds applied many events at a time.

A read model (`Projection`) is a set of tables and, per aggregate type it follows, a
pure fold: `(rows of one aggregate, event) -> rows of that aggregate`. No SQL lives in
a fold. The engine applies a batch of messages in the caller's transaction:

1. reads the applied version of every aggregate in the batch (one query), and the
   current rows of those aggregates (one query per table);
2. folds every message in memory, in order; a message whose version is not newer than
   the aggregate's applied version is a duplicate or a stale re-delivery and is
   skipped (exactly-once effect under at-least-once delivery);
3. writes back only the tables whose rows changed, with one DELETE and one multi-row
   INSERT (COPY when many) per table, then the applied versions (one statement) and
   the projection's position.

Because every row is derived from one aggregate's events alone, the result does not
depend on how the messages of different aggregates interleave, nor on how they are
cut into batches (invariant I6, docs/architecture.md).

A fold that raises refuses its message: the engine leaves that aggregate's rows as
they were before the message and reports the message (the caller dead-letters it),
and goes on with the rest. If the database refuses the batch's writes, `BatchEngine`
re-applies it one message at a time in savepoints, to find the messages at fault.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from projections.contract.models import EventMessage
from projections.store import COPY_FROM, POSITIONS, ReadStore, Table

Row = dict[str, Any]
#: The rows of one aggregate in one projection, by table name (absent: no rows).
Doc = Mapping[str, tuple[Row, ...]]
Fold = Callable[[Doc, EventMessage], Doc]
#: Physical table names for logical ones (a rebuild writes into shadow tables).
Naming = Callable[[str], str]

EMPTY: Doc = {}


def live(name: str) -> str:
    return name


def rows_of(doc: Doc, table: str) -> tuple[Row, ...]:
    return doc.get(table, ())


def row_of(doc: Doc, table: str) -> Row | None:
    rows = doc.get(table, ())
    return rows[0] if rows else None


def with_rows(doc: Doc, table: str, rows: Iterable[Row]) -> Doc:
    return {**doc, table: tuple(rows)}


@dataclass(frozen=True)
class Projection:
    """A read model: its tables, and a pure fold per aggregate type it follows."""

    name: str
    tables: tuple[Table, ...]
    folds: Mapping[str, Fold]

    @property
    def applied_table(self) -> Table:
        """The last version applied per aggregate: duplicates are skipped by it."""
        return Table(
            f"rm_{self.name}_applied",
            None,
            ("aggregate_id TEXT NOT NULL", "version BIGINT NOT NULL"),
            ("aggregate_id",),
        )

    @property
    def all_tables(self) -> tuple[Table, ...]:
        return (*self.tables, self.applied_table)

    def tables_of(self, aggregate_type: str) -> tuple[Table, ...]:
        return tuple(t for t in self.tables if t.aggregate == aggregate_type)


@dataclass
class BatchOutcome:
    applied: int = 0  # messages folded into at least one projection
    skipped: int = 0  # duplicates and stale re-deliveries everywhere
    refused: list[tuple[int, str]] = field(default_factory=list)  # (index, why)


@dataclass
class _Pass:
    """One projection's view of one batch."""

    originals: dict[str, Doc]  # the rows as read, per aggregate
    docs: dict[str, Doc]  # the rows as folded so far
    versions: dict[str, int]  # applied version per aggregate
    changed: dict[str, int] = field(default_factory=dict)  # versions applied in this batch
    folded: set[int] = field(default_factory=set)  # the batch's messages folded in


def apply_batch(
    store: ReadStore,
    projections: Sequence[Projection],
    messages: Sequence[EventMessage],
    naming: Naming = live,
) -> BatchOutcome:
    """Applies `messages` to `projections` in the caller's transaction (see the module
    docstring). Refused messages are reported, not raised; a database error is raised
    (the caller rolls back, see `BatchEngine`).

    A message one read model refuses is applied to none: the folds are pure, so when a
    refusal turns up the batch is simply folded again without it."""
    by_type: dict[str, list[int]] = {}
    for index, message in enumerate(messages):
        by_type.setdefault(message.aggregate_type, []).append(index)
    # Within one aggregate type messages keep their order, which is all a fold needs.
    indexes_of = [
        [i for kind in projection.folds for i in by_type.get(kind, ())]
        for projection in projections
    ]
    reads = _read_all(
        store,
        [
            (p, [messages[i] for i in indexes])
            for p, indexes in zip(projections, indexes_of, strict=True)
        ],
        naming,
    )
    plans = list(zip(projections, indexes_of, reads, strict=True))
    refused: dict[int, str] = {}
    while True:
        passes = []
        before = len(refused)
        for projection, indexes, read in plans:
            passes.append(_fold_all(projection, indexes, read, messages, refused))
        if len(refused) == before:
            break
    folded: set[int] = set()
    writes: list[tuple[str, Any]] = []
    for (projection, _, _), state in zip(plans, passes, strict=True):
        writes.extend(_writes(projection, state, naming))
        folded |= state.folded
    _run_writes(store, writes)
    if messages:
        top = max(m.position for m in messages)
        store.upsert_rows(
            naming(POSITIONS.name),
            ("projection", "position"),
            [(projection.name, top) for projection in projections],
            types=("text", "bigint"),
            keep_greater="position",
        )
    seen = {i for _, indexes, _ in plans for i in indexes}
    return BatchOutcome(
        applied=len(folded),
        skipped=len(seen - folded - set(refused)),
        refused=sorted(refused.items()),
    )


def _fold_all(
    projection: Projection,
    indexes: Sequence[int],
    read: _Pass,
    messages: Sequence[EventMessage],
    refused: dict[int, str],
) -> _Pass:
    """Folds the messages at `indexes` (but the refused) onto the rows as read; a fold
    that raises adds its message to `refused`."""
    state = _Pass(originals=read.originals, docs=dict(read.originals), versions=dict(read.versions))
    folds = projection.folds
    docs, versions, changed = state.docs, state.versions, state.changed
    for i in indexes:
        if i in refused:
            continue
        message = messages[i]
        aggregate_id = message.aggregate_id
        if message.aggregate_version <= versions.get(aggregate_id, 0):
            continue  # a duplicate or a stale re-delivery
        try:
            doc = folds[message.aggregate_type](docs.get(aggregate_id, EMPTY), message)
        except Exception as exc:  # a fold refusing its input: that message only
            refused[i] = f"{projection.name}: {type(exc).__name__}: {exc}"
            continue
        docs[aggregate_id] = doc
        versions[aggregate_id] = changed[aggregate_id] = message.aggregate_version
        state.folded.add(i)
    return state


def _read_all(
    store: ReadStore,
    plans: Sequence[tuple[Projection, Sequence[EventMessage]]],
    naming: Naming,
) -> list[_Pass]:
    """The applied versions and current rows of every aggregate the messages of each
    plan touch: one query per table, all sent together."""
    queries: list[tuple[str, Sequence[str], str, Sequence[str]]] = []
    shapes: list[list[tuple[Table | None, int]]] = []
    for projection, messages in plans:
        ids_by_type: dict[str, dict[str, None]] = {}
        for message in messages:
            ids_by_type.setdefault(message.aggregate_type, {})[message.aggregate_id] = None
        every = [i for ids in ids_by_type.values() for i in ids]
        shape: list[tuple[Table | None, int]] = []
        if every:
            applied = projection.applied_table
            shape.append((None, len(queries)))
            queries.append(
                (naming(applied.name), ("aggregate_id", "version"), "aggregate_id", every)
            )
            for aggregate_type, ids in ids_by_type.items():
                for kept in projection.tables_of(aggregate_type):
                    shape.append((kept, len(queries)))
                    queries.append((naming(kept.name), kept.column_names, kept.key, list(ids)))
        shapes.append(shape)
    results = store.select_many(queries)
    passes = []
    for shape in shapes:
        versions: dict[str, int] = {}
        docs: dict[str, Doc] = {}
        for maybe_table, index in shape:
            if maybe_table is None:
                versions = {str(a): int(v) for a, v in results[index]}
                continue
            table = maybe_table
            names = table.column_names
            found: dict[str, list[Row]] = {}
            for values in results[index]:
                row = dict(zip(names, values, strict=True))
                found.setdefault(row[table.key], []).append(row)
            for aggregate_id, rows in found.items():
                rows.sort(key=lambda r: tuple(r[c] for c in table.primary_key))
                docs[aggregate_id] = {**docs.get(aggregate_id, EMPTY), table.name: tuple(rows)}
        passes.append(_Pass(originals=docs, docs=dict(docs), versions=versions))
    return passes


def _writes(projection: Projection, state: _Pass, naming: Naming) -> list[tuple[str, Any]]:
    """The statements that store a projection's changed rows: ("delete", args),
    ("insert", args) and ("upsert", args) for the store's methods of those names."""
    if not state.changed:
        return []
    writes: list[tuple[str, Any]] = []
    for table in projection.tables:
        replaced: list[str] = []
        rows: list[tuple[Any, ...]] = []
        names = table.column_names
        for aggregate_id in state.changed:
            new = state.docs.get(aggregate_id, EMPTY).get(table.name, ())
            old = state.originals.get(aggregate_id, EMPTY).get(table.name, ())
            if new == old:
                continue
            if old:  # rows of an aggregate new to this table need no delete
                replaced.append(aggregate_id)
            rows.extend(tuple(row[c] for c in names) for row in new)
        physical = naming(table.name)
        if replaced:
            writes.append(("delete", (physical, table.key, replaced)))
        if rows:
            writes.append(("insert", (physical, names, rows)))
    applied = (naming(projection.applied_table.name), ("aggregate_id", "version"))
    writes.append(("upsert", (*applied, sorted(state.changed.items()), ("text", "bigint"))))
    return writes


def _run_writes(store: ReadStore, writes: Sequence[tuple[str, Any]]) -> None:
    """Runs the writes, in one round trip unless one of them is a COPY."""
    small = all(kind != "insert" or len(args[2]) < COPY_FROM for kind, args in writes)
    with store.pipelined(when=small and len(writes) > 1):
        for kind, args in writes:
            if kind == "delete":
                store.delete_in(*args)
            elif kind == "insert":
                store.insert_rows(*args)
            else:
                table, columns, rows, types = args
                store.upsert_rows(table, columns, rows, types=types)


class BatchEngine:
    """Applies batches to a set of projections, isolating messages the database refuses.

    `apply(store, messages)` runs inside the caller's transaction; on a database error it
    rolls back to a savepoint and re-applies the batch one message at a time, so only the
    messages at fault are refused."""

    def __init__(
        self,
        projections: Sequence[Projection],
        *,
        naming: Naming = live,
        is_infrastructure_fault: Callable[[BaseException], bool] = lambda exc: False,
    ) -> None:
        self.projections = tuple(projections)
        self.naming = naming
        self._infrastructure_fault = is_infrastructure_fault

    def apply(
        self, store: ReadStore, messages: Sequence[EventMessage], *, guarded: bool = True
    ) -> BatchOutcome:
        """With `guarded=False` the batch is applied whole, without a savepoint: a
        database error then aborts the caller's transaction, which must roll back and
        may try again guarded."""
        if not guarded:
            return apply_batch(store, self.projections, messages, self.naming)
        try:
            with _savepoint(store):
                return apply_batch(store, self.projections, messages, self.naming)
        except Exception as exc:
            if self._infrastructure_fault(exc):
                raise
            if len(messages) <= 1:
                return BatchOutcome(refused=[(0, f"{type(exc).__name__}: {exc}")])
        outcome = BatchOutcome()
        for index, message in enumerate(messages):
            one = self.apply(store, [message])
            outcome.applied += one.applied
            outcome.skipped += one.skipped
            outcome.refused.extend((index, why) for _, why in one.refused)
        return outcome


@contextmanager
def _savepoint(store: ReadStore) -> Iterator[None]:
    if store.dialect == "postgres":
        with store.connection.transaction():  # type: ignore[attr-defined]
            yield
        return
    store.execute("SAVEPOINT engine_batch")
    try:
        yield
    except BaseException:
        store.execute("ROLLBACK TO SAVEPOINT engine_batch")
        store.execute("RELEASE SAVEPOINT engine_batch")
        raise
    store.execute("RELEASE SAVEPOINT engine_batch")
