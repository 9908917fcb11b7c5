"""A deal's full history and its state at any moment, replayed from stored events.

Nothing here reads a read model or a snapshot: history and as-of states come from
the stored rows alone, streamed page by page.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Notification

from domain.deal import Deal
from domain.errors import InvalidInput, NotFound
from domain.ids import protection_id
from domain.values import actor_text
from infra.audit.store import AuditStore, StoredRow
from projections.contract.encoding import Encoder, plain


@dataclass(frozen=True)
class HistoryEntry:
    position: int
    aggregate_type: str
    aggregate_id: UUID
    version: int
    occurred_at: datetime
    event_type: str
    actor: str
    command_id: str
    correlation_id: str
    changes: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "position": self.position,
            "aggregate_type": self.aggregate_type,
            "aggregate_id": str(self.aggregate_id),
            "version": self.version,
            "occurred_at": self.occurred_at.isoformat(),
            "event_type": self.event_type,
            "actor": self.actor,
            "command_id": self.command_id,
            "correlation_id": self.correlation_id,
            "changes": self.changes,
        }


def _entry(encoder: Encoder, row: StoredRow) -> HistoryEntry:
    """Each stored row decoded once, on the relay's path: its JSON straight to the
    published fields (no event object is built unless the row needs upcasting), so
    an entry's changes are what consumers of the event topic receive, except that
    personal fields show their text (or `[erased]`) where the topic withholds it."""
    event_type, aggregate_type, occurred_at, cause, changes = encoder.fields(
        Notification(
            id=row.position,
            originator_id=row.originator_id,
            originator_version=row.version,
            topic=row.topic,
            state=row.state,
        )
    )
    actor = cause["actor"]
    return HistoryEntry(
        position=row.position,
        aggregate_type=aggregate_type,
        aggregate_id=row.originator_id,
        version=row.version,
        occurred_at=datetime.fromisoformat(occurred_at),
        event_type=event_type,
        actor=actor_text(actor["kind"], actor["id"], actor["role"]),
        command_id=cause["command_id"],
        correlation_id=cause["correlation_id"],
        changes=changes,
    )


def deal_sources(store: AuditStore, deal_id: UUID) -> tuple[list[UUID], str]:
    """The registrations a deal came from, and its conflict key."""
    rows = store.stream(deal_id)
    first = next(rows, None)
    if first is None:
        raise NotFound(f"no deal {deal_id}", deal_id=str(deal_id))
    opened = store.decode(first)
    if not isinstance(opened, Deal.Opened):
        raise NotFound(f"{deal_id} is not a deal", deal_id=str(deal_id))
    registrations = [opened.registration_id] if opened.registration_id else []
    from domain.normalise import conflict_key

    return registrations, conflict_key(opened.customer.domain, opened.product_line)


def deal_streams(store: AuditStore, deal_id: UUID) -> list[UUID]:
    """The streams an auditor gets for a deal, in history and in an export bundle: the
    deal's own, the registration(s) it came from, and the WHOLE channel-protection
    stream of its conflict key, rivals' claims included (a hash chain can only be
    checked whole, and who else claimed the key is part of the story)."""
    registrations, key = deal_sources(store, deal_id)
    return [deal_id, *registrations, protection_id(key)]


def deal_history(
    store: AuditStore, deal_id: UUID, *, after_position: int = 0, limit: int | None = None
) -> Iterator[HistoryEntry]:
    """Every event of the deal's streams (`deal_streams`), in ledger order: the same
    events an export bundle holds."""
    # Streams are read one at a time, then merged by position; each is streamed.
    import heapq

    encoder = Encoder(store.ledger.mapper, personal=True)
    sources = [store.stream(stream, hashes=False) for stream in deal_streams(store, deal_id)]
    count = 0
    for row in heapq.merge(*sources, key=lambda row: row.position):
        if row.position <= after_position:
            continue
        if limit is not None and count >= limit:
            return
        count += 1
        yield _entry(encoder, row)


@dataclass(frozen=True)
class AsOf:
    deal: dict[str, Any]
    deal_version: int
    registration: dict[str, Any] | None
    registration_version: int | None


def _replay(
    store: AuditStore,
    aggregate_id: UUID,
    as_of: datetime | None,
    version: int | None,
    notes: list[str] | None = None,
) -> tuple[Any, int]:
    """The aggregate as of a moment or version; a deal's notes (which the aggregate
    only counts) are gathered into `notes` on the way."""
    aggregate: Any = None
    for row in store.stream(aggregate_id, hashes=False):
        if version is not None and row.version > version:
            break
        event = store.decode(row)
        if as_of is not None and event.timestamp > as_of:
            break
        if notes is not None and isinstance(event, Deal.NoteAdded):
            notes.append(event.text)
        aggregate = event.mutate(aggregate)
    return aggregate, (aggregate.version if aggregate is not None else 0)


def readable_state(aggregate: Any) -> dict[str, Any]:
    state = {
        "id": str(aggregate.id),
        "version": aggregate.version,
        "created_on": aggregate.created_on.isoformat(),
        "modified_on": aggregate.modified_on.isoformat(),
    }
    state.update({k: plain(v) for k, v in vars(aggregate).items() if not k.startswith("_")})
    return state


def deal_as_of(
    store: AuditStore,
    deal_id: UUID,
    *,
    as_of: datetime | None = None,
    version: int | None = None,
) -> AsOf:
    """The deal (and its registration) exactly as they were, by time or deal version."""
    if as_of is not None and as_of.utcoffset() is None:
        raise InvalidInput("as-of times must carry a UTC offset", field="as_of")
    notes: list[str] = []
    deal, deal_version = _replay(store, deal_id, as_of, version, notes)
    if deal is None:
        raise NotFound(f"deal {deal_id} did not exist yet", deal_id=str(deal_id))
    if version is not None and deal_version < version:
        raise NotFound(
            f"deal {deal_id} has no version {version}; its latest"
            f"{f' as of {as_of.isoformat()}' if as_of is not None else ''} is {deal_version}",
            deal_id=str(deal_id),
            version=version,
        )
    moment = as_of if as_of is not None else deal.modified_on
    registration = None
    registration_version = None
    if deal.registration_id is not None:
        reg, registration_version = _replay(store, deal.registration_id, moment, None)
        registration = readable_state(reg) if reg is not None else None
    return AsOf(
        {**readable_state(deal), "notes": notes}, deal_version, registration, registration_version
    )
