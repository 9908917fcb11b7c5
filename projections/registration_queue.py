"""The registration queue read model: pending reviews aged against an approval SLA, and
channel conflicts (conflict keys with more than one live registration).

Registration rows come from registration events, protection rows (who holds each
conflict key) from channel-protection events; the queries join them, so rows never
depend on the order in which different aggregates' events arrive.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any
from uuid import UUID

from domain.normalise import conflict_key
from projections.contract.models import EventMessage
from projections.engine import Doc, Fold, Projection, Row, row_of, with_rows
from projections.store import (
    ReadStore,
    Table,
    from_micros,
    parse_optional_time,
    parse_time,
    time_text,
    to_micros,
)

AWAITING_REVIEW = ("in_review", "action_required")
PENDING = ("submitted", *AWAITING_REVIEW)
HOLDING = ("approved", "converted")
_HOURS = Decimal("0.01")


@dataclass(frozen=True)
class ReviewItem:
    registration_id: UUID
    status: str  # in_review (waiting on a channel manager) or action_required (on the partner)
    partner_code: str
    customer_name: str
    customer_domain: str
    product_line: str
    conflict_key: str
    value: Decimal
    currency: str
    review_reasons: tuple[str, ...]
    related_registrations: dict[str, tuple[UUID, ...]]  # review reason -> registrations
    submitted_at: datetime
    status_changed_at: datetime
    age_hours: Decimal  # since submission, to 0.01 hour
    breaches_sla: bool  # older than the SLA


@dataclass(frozen=True)
class OpenConflict:
    conflict_key: str
    registration_ids: tuple[UUID, ...]  # live registrations, earliest submission first
    partners: tuple[str, ...]  # the partner of each, in the same order
    holder_registration_id: UUID | None  # who holds the key's protection, if anyone
    holder_partner: str | None
    protected_until: datetime | None


# -- the folds ---------------------------------------------------------------------------

REGISTRATIONS = Table(
    "rm_registration",
    "registration",
    (
        "registration_id TEXT NOT NULL",
        "partner_code TEXT NOT NULL",
        "customer_name TEXT NOT NULL",
        "customer_domain TEXT NOT NULL",
        "customer_country TEXT NOT NULL",
        "product_line TEXT NOT NULL",
        "conflict_key TEXT NOT NULL",
        "status TEXT NOT NULL",
        "value_micros BIGINT NOT NULL",
        "currency TEXT NOT NULL",
        "expected_close TEXT NOT NULL",
        "review_reasons TEXT NOT NULL",  # comma-separated, sorted; '' when none
        "submitted_at TEXT NOT NULL",
        "status_changed_at TEXT NOT NULL",
        "protected_until TEXT",
        "rejection_reason TEXT",
        "deal_id TEXT",
    ),
    ("registration_id",),
    (("status",), ("conflict_key",)),
)
RELATED = Table(
    "rm_registration_related",
    "registration",
    (
        "registration_id TEXT NOT NULL",
        "reason TEXT NOT NULL",  # a review reason (key_protected, near_duplicate, ...)
        "related_id TEXT NOT NULL",  # a registration behind that reason
    ),
    ("registration_id", "reason", "related_id"),
)
PROTECTIONS = Table(
    "rm_protection",
    "channel_protection",
    (
        "protection_id TEXT NOT NULL",
        "conflict_key TEXT NOT NULL",
        "holder_registration_id TEXT",
        "holder_partner TEXT",
        "protected_until TEXT",
    ),
    ("protection_id",),
    (("conflict_key",),),
)

Handler = Callable[[Doc, EventMessage, Any], Doc]


def _related(registration_id: str, related: Mapping[str, Any]) -> list[Row]:
    """The registrations recorded behind each review reason."""
    return [
        {"registration_id": registration_id, "reason": reason, "related_id": related_id}
        for reason, ids in sorted(related.items())
        for related_id in sorted(set(ids))
    ]


def _changed(
    doc: Doc, m: EventMessage, status: str | None = None, related: Any = None, **columns: Any
) -> Doc:
    registration = row_of(doc, REGISTRATIONS.name)
    if registration is None:
        return doc
    if status is not None:
        columns |= {"status": status, "status_changed_at": time_text(m.occurred_at)}
    doc = with_rows(doc, REGISTRATIONS.name, [{**registration, **columns}])
    if related is not None:
        doc = with_rows(doc, RELATED.name, _related(m.aggregate_id, related))
    return doc


def _submitted(doc: Doc, m: EventMessage, d: Any) -> Doc:
    at = time_text(m.occurred_at)
    registration = {
        "registration_id": m.aggregate_id,
        "partner_code": d.partner_code,
        "customer_name": d.customer.name,
        "customer_domain": d.customer.domain,
        "customer_country": d.customer.country,
        "product_line": d.product_line,
        "conflict_key": conflict_key(d.customer.domain, d.product_line),
        "status": "submitted",
        "value_micros": to_micros(d.estimated_value.amount),
        "currency": d.estimated_value.currency,
        "expected_close": d.expected_close,
        "review_reasons": "",
        "submitted_at": at,
        "status_changed_at": at,
        "protected_until": None,
        "rejection_reason": None,
        "deal_id": None,
    }
    return {REGISTRATIONS.name: (registration,), RELATED.name: ()}


def _sent_to_review(doc: Doc, m: EventMessage, d: Any) -> Doc:
    reasons = ",".join(sorted(set(d.reasons)))
    return _changed(doc, m, "in_review", d.related, review_reasons=reasons)


def _approved(doc: Doc, m: EventMessage, d: Any) -> Doc:
    until = time_text(d.protected_until)
    return _changed(doc, m, "approved", {}, review_reasons="", protected_until=until)


def _resubmitted(doc: Doc, m: EventMessage, d: Any) -> Doc:
    return _changed(
        doc,
        m,
        "in_review",
        d.related,
        review_reasons="resubmitted",
        customer_name=d.customer.name,
        customer_country=d.customer.country,
        value_micros=to_micros(d.estimated_value.amount),
        currency=d.estimated_value.currency,
        expected_close=d.expected_close,
    )


def _to(status: str, **columns: Any) -> Handler:
    def move(doc: Doc, m: EventMessage, d: Any) -> Doc:
        values = {k: getattr(d, v) for k, v in columns.items()}
        return _changed(doc, m, status, **values)

    return move


def _extended(doc: Doc, m: EventMessage, d: Any) -> Doc:
    return _changed(doc, m, protected_until=time_text(d.protected_until))


def _withdrawn(doc: Doc, m: EventMessage, d: Any) -> Doc:
    return _changed(doc, m, "withdrawn", protected_until=None)


_REGISTRATION_EVENTS: dict[str, Handler] = {
    "registration.submitted": _submitted,
    "registration.sent_to_review": _sent_to_review,
    "registration.approved": _approved,
    "registration.rejected": _to("rejected", rejection_reason="reason"),
    "registration.action_requested": _to("action_required"),
    "registration.resubmitted": _resubmitted,
    "registration.extended": _extended,
    "registration.withdrawn": _withdrawn,
    "registration.expired": _to("expired"),
    "registration.converted": _to("converted", deal_id="deal_id"),
}


def _protection_opened(doc: Doc, m: EventMessage, d: Any) -> Doc:
    protection = {
        "protection_id": m.aggregate_id,
        "conflict_key": d.conflict_key,
        "holder_registration_id": None,
        "holder_partner": None,
        "protected_until": None,
    }
    return {PROTECTIONS.name: (protection,)}


def _protection(doc: Doc, **columns: Any) -> Doc:
    protection = row_of(doc, PROTECTIONS.name)
    if protection is None:
        return doc
    return with_rows(doc, PROTECTIONS.name, [{**protection, **columns}])


def _granted(doc: Doc, m: EventMessage, d: Any) -> Doc:
    return _protection(
        doc,
        holder_registration_id=d.registration_id,
        holder_partner=d.partner_code,
        protected_until=time_text(d.protected_until),
    )


def _protection_extended(doc: Doc, m: EventMessage, d: Any) -> Doc:
    return _protection(doc, protected_until=time_text(d.protected_until))


def _released(doc: Doc, m: EventMessage, d: Any) -> Doc:
    protection = row_of(doc, PROTECTIONS.name)
    if protection is None or protection["holder_registration_id"] != d.registration_id:
        return doc
    return _protection(doc, holder_registration_id=None, holder_partner=None, protected_until=None)


_PROTECTION_EVENTS: dict[str, Handler] = {
    "channel_protection.opened": _protection_opened,
    "channel_protection.granted": _granted,
    "channel_protection.extended": _protection_extended,
    "channel_protection.released": _released,
}


def _fold(events: Mapping[str, Handler]) -> Fold:
    def fold(doc: Doc, message: EventMessage) -> Doc:
        handler = events.get(message.name)
        return doc if handler is None else handler(doc, message, message.data)

    return fold


REGISTRATION_QUEUE = Projection(
    "registration_queue",
    (REGISTRATIONS, RELATED, PROTECTIONS),
    {
        "registration": _fold(_REGISTRATION_EVENTS),
        "channel_protection": _fold(_PROTECTION_EVENTS),
    },
)

# -- queries ------------------------------------------------------------------------------


def review_queue(store: ReadStore, *, now: datetime, sla_hours: float) -> list[ReviewItem]:
    """Registrations awaiting a review decision (in_review) or the partner's answer
    (action_required), oldest submission first, aged from submission against the SLA."""
    sla = timedelta(hours=sla_hours)
    rows = store.fetchall(
        "SELECT registration_id, status, partner_code, customer_name, customer_domain, "
        "product_line, conflict_key, value_micros, currency, review_reasons, submitted_at, "
        "status_changed_at FROM rm_registration WHERE status IN (%s, %s) "
        "ORDER BY submitted_at, registration_id",
        AWAITING_REVIEW,
    )
    related = _related_of_awaiting_review(store)
    items = []
    for row in rows:
        submitted_at = parse_time(row[10])
        age = now - submitted_at
        hours = Decimal(age // timedelta(microseconds=1)) / Decimal(3600 * 10**6)
        items.append(
            ReviewItem(
                registration_id=UUID(row[0]),
                status=row[1],
                partner_code=row[2],
                customer_name=row[3],
                customer_domain=row[4],
                product_line=row[5],
                conflict_key=row[6],
                value=from_micros(row[7], row[8]),
                currency=row[8],
                review_reasons=tuple(r for r in str(row[9]).split(",") if r),
                related_registrations=related.get(row[0], {}),
                submitted_at=submitted_at,
                status_changed_at=parse_time(row[11]),
                age_hours=hours.quantize(_HOURS, rounding=ROUND_HALF_EVEN),
                breaches_sla=age > sla,
            )
        )
    return items


def _related_of_awaiting_review(store: ReadStore) -> dict[str, dict[str, tuple[UUID, ...]]]:
    rows = store.fetchall(
        "SELECT x.registration_id, x.reason, x.related_id FROM rm_registration_related x "
        "JOIN rm_registration r ON r.registration_id = x.registration_id "
        "WHERE r.status IN (%s, %s) ORDER BY x.registration_id, x.reason, x.related_id",
        AWAITING_REVIEW,
    )
    found: dict[str, dict[str, list[UUID]]] = {}
    for registration_id, reason, related_id in rows:
        found.setdefault(registration_id, {}).setdefault(reason, []).append(UUID(related_id))
    return {
        registration_id: {reason: tuple(ids) for reason, ids in by_reason.items()}
        for registration_id, by_reason in found.items()
    }


def open_conflicts(store: ReadStore, *, now: datetime | None = None) -> list[OpenConflict]:
    """Conflict keys with more than one live registration, by key.

    Live: pending (submitted, in_review, action_required), or approved/converted and
    holding the key's protection (as granted and not yet released; with `now`, also
    not yet lapsed, even before the sweeper has run)."""
    rows = store.fetchall(
        "SELECT r.conflict_key, r.registration_id, r.partner_code, r.status, "
        "p.holder_registration_id, p.holder_partner, p.protected_until "
        "FROM rm_registration r LEFT JOIN rm_protection p ON p.conflict_key = r.conflict_key "
        "WHERE r.status IN (%s, %s, %s, %s, %s) "
        "ORDER BY r.conflict_key, r.submitted_at, r.registration_id",
        (*PENDING, *HOLDING),
    )
    live: dict[str, list[tuple[str, str]]] = {}
    holders: dict[str, tuple[UUID, str, datetime | None]] = {}
    for key, registration_id, partner, status, holder, holder_partner, until in rows:
        protected_until = parse_optional_time(until)
        holds = (
            holder is not None
            and holder == registration_id
            and (now is None or protected_until is None or now < protected_until)
        )
        if holds:
            holders[key] = (UUID(holder), holder_partner, protected_until)
        if status in PENDING or (status in HOLDING and holds):
            live.setdefault(key, []).append((registration_id, partner))
    conflicts = []
    for key in sorted(live):
        entries = live[key]
        if len(entries) < 2:
            continue
        holder_id, holder_partner, protected_until = holders.get(key, (None, None, None))
        conflicts.append(
            OpenConflict(
                conflict_key=key,
                registration_ids=tuple(UUID(r) for r, _ in entries),
                partners=tuple(p for _, p in entries),
                holder_registration_id=holder_id,
                holder_partner=holder_partner,
                protected_until=protected_until,
            )
        )
    return conflicts
