"""Applies EventMessages to the read models, exactly once per projection and version.

Each projection remembers, per aggregate, the last version it applied
(``rm_applied``): a message whose version is not newer is a duplicate or a stale
re-delivery and is skipped for that projection. Events a projection does not use still
advance its version, so every projection's bookkeeping covers every aggregate. The
highest ledger position applied per projection (``rm_position``) tells how fresh a
model is. Kafka keeps one aggregate's events in order, which is all this relies on:
every read-model row is derived from one aggregate's events, and the queries join
across aggregates, so interleaving different aggregates changes nothing.

Nothing here commits: apply a message (and store the consumed offset) inside the
caller's transaction. When `apply_message` raises, roll that transaction (or a
savepoint around the call) back before going on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from projections import attribution, pipeline, registration_queue
from projections.contract.fields import SCHEMA_ERRORS, Fields, decode, invalid
from projections.contract.message import EventMessage, InvalidMessage
from projections.store import (
    APPLIED_TABLE,
    POSITION_TABLE,
    PROJECTION_NAMES,
    ReadStore,
    dump_tables,
)

PROJECTIONS: tuple[str, ...] = PROJECTION_NAMES

Handler = Callable[[ReadStore, EventMessage, Fields], None]

HANDLERS: Mapping[str, Mapping[str, Handler]] = {
    "pipeline": pipeline.HANDLERS,
    "attribution": attribution.HANDLERS,
    "registration_queue": registration_queue.HANDLERS,
}

__all__ = [
    "PROJECTIONS",
    "applied_version",
    "apply_message",
    "dump_tables",
    "projection_position",
]


def _known(projections: Sequence[str]) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(projections))
    unknown = [p for p in names if p not in HANDLERS]
    if unknown:
        raise ValueError(f"unknown projection(s) {unknown}; known: {list(PROJECTIONS)}")
    return names


def apply_message(
    store: ReadStore, message: EventMessage, projections: Sequence[str] = PROJECTIONS
) -> bool:
    """Applies `message` to each named projection that has not applied its version yet.

    Returns False when every named projection had already applied it (a duplicate or
    stale re-delivery). Raises InvalidMessage when its data does not follow the event
    schema; the caller dead-letters it after rolling back."""
    names = _known(projections)
    aggregate_id = str(message.aggregate_id)
    version = message.aggregate_version
    applied = dict(
        store.fetchall(
            f"SELECT projection, version FROM {APPLIED_TABLE} WHERE aggregate_id = %s",
            (aggregate_id,),
        )
    )
    due = [p for p in names if version > int(applied.get(p, 0))]
    if not due:
        return False
    handlers = [(p, HANDLERS[p].get(message.name)) for p in due]
    # Decode before writing anything, so a bad message leaves no partial effect.
    fields = decode(message) if any(h is not None for _, h in handlers) else {}
    for projection, handler in handlers:
        if handler is not None:
            try:
                handler(store, message, fields)
            except InvalidMessage:
                raise
            except SCHEMA_ERRORS as exc:
                raise invalid(message, exc) from None
        _record(store, projection, aggregate_id, version, message.position)
    return True


def _record(
    store: ReadStore, projection: str, aggregate_id: str, version: int, position: int
) -> None:
    store.execute(
        f"INSERT INTO {APPLIED_TABLE} (projection, aggregate_id, version) VALUES (%s, %s, %s) "
        "ON CONFLICT (aggregate_id, projection) DO UPDATE SET version = excluded.version",
        (projection, aggregate_id, version),
    )
    store.execute(
        f"INSERT INTO {POSITION_TABLE} (projection, position) VALUES (%s, %s) "
        "ON CONFLICT (projection) DO UPDATE SET position = CASE "
        f"WHEN excluded.position > {POSITION_TABLE}.position THEN excluded.position "
        f"ELSE {POSITION_TABLE}.position END",
        (projection, position),
    )


def projection_position(store: ReadStore, projection: str) -> int:
    """The highest ledger position applied to `projection` (0 before any)."""
    _known([projection])
    value = store.scalar(
        f"SELECT position FROM {POSITION_TABLE} WHERE projection = %s", (projection,)
    )
    return 0 if value is None else int(value)


def applied_version(store: ReadStore, projection: str, aggregate_id: object) -> int:
    """The last version of `aggregate_id` applied to `projection` (0 before any)."""
    _known([projection])
    value = store.scalar(
        f"SELECT version FROM {APPLIED_TABLE} WHERE aggregate_id = %s AND projection = %s",
        (str(aggregate_id), projection),
    )
    return 0 if value is None else int(value)
