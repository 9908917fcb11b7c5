"""The read models the ledger keeps, and what every one of them shares.

`PROJECTIONS` is the one list of read models: the projector, the embedded feed, the
rebuild, the CLI and the API all take their names and tables from here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from projections.attribution import ATTRIBUTION
from projections.engine import Naming, Projection, live
from projections.pipeline import PIPELINE
from projections.registration_queue import REGISTRATION_QUEUE
from projections.store import POSITIONS, ReadStore, Table

PROJECTIONS: tuple[Projection, ...] = (PIPELINE, ATTRIBUTION, REGISTRATION_QUEUE)
PROJECTION_NAMES: tuple[str, ...] = tuple(p.name for p in PROJECTIONS)


def projections_named(names: Iterable[str] | None = None) -> tuple[Projection, ...]:
    """The read models called `names` (every one when None), in the list's order."""
    if names is None:
        return PROJECTIONS
    wanted = set(names)
    unknown = sorted(wanted - set(PROJECTION_NAMES))
    if unknown:
        raise ValueError(f"unknown projection(s) {unknown}; known: {list(PROJECTION_NAMES)}")
    return tuple(p for p in PROJECTIONS if p.name in wanted)


def tables_of(projections: Sequence[Projection] = PROJECTIONS) -> tuple[Table, ...]:
    """Every table of `projections`, their applied-version tables and the positions."""
    return (*(t for p in projections for t in p.all_tables), POSITIONS)


def create_tables(store: ReadStore, projections: Sequence[Projection] = PROJECTIONS) -> None:
    store.create_tables(tables_of(projections))


def projection_position(store: ReadStore, projection: str, naming: Naming = live) -> int:
    """The highest ledger position applied to `projection` (0 before any)."""
    projections_named([projection])
    value = store.scalar(
        f"SELECT position FROM {naming(POSITIONS.name)} WHERE projection = %s", (projection,)
    )
    return 0 if value is None else int(value)


def applied_version(store: ReadStore, projection: str, aggregate_id: object) -> int:
    """The last version of `aggregate_id` applied to `projection` (0 before any)."""
    (found,) = projections_named([projection])
    value = store.scalar(
        f"SELECT version FROM {found.applied_table.name} WHERE aggregate_id = %s",
        (str(aggregate_id),),
    )
    return 0 if value is None else int(value)


def dump_tables(
    store: ReadStore, projections: Sequence[Projection] = PROJECTIONS
) -> dict[str, list[tuple[Any, ...]]]:
    """Every table's rows (bookkeeping included), ordered by primary key."""
    return {
        table.name: store.fetchall(
            f"SELECT * FROM {table.name} ORDER BY {', '.join(table.primary_key)}"
        )
        for table in tables_of(projections)
    }
