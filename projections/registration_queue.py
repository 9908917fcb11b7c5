"""The registration queue read model: pending reviews aged against an approval SLA, and
channel conflicts (conflict keys with more than one live registration).

Registration rows come from registration events, protection rows (who holds each
conflict key) from channel-protection events; the queries join them, so rows never
depend on the order in which different aggregates' events arrive.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any
from uuid import UUID

from domain.normalise import conflict_key
from domain.values import Customer, Money
from projections.contract.fields import Fields
from projections.contract.message import EventMessage
from projections.store import (
    ReadStore,
    date_text,
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


# -- projector ----------------------------------------------------------------------------


def _set(store: ReadStore, message: EventMessage, **columns: Any) -> None:
    assignments = ", ".join(f"{name} = %s" for name in columns)
    store.execute(
        f"UPDATE rm_registration SET {assignments} WHERE registration_id = %s",
        (*columns.values(), str(message.aggregate_id)),
    )


def _status(store: ReadStore, message: EventMessage, status: str, **columns: Any) -> None:
    _set(
        store,
        message,
        status=status,
        status_changed_at=time_text(message.occurred_at),
        **columns,
    )


def _submitted(store: ReadStore, message: EventMessage, f: Fields) -> None:
    registration_id = str(message.aggregate_id)
    customer: Customer = f["customer"]
    value: Money = f["estimated_value"]
    at = time_text(message.occurred_at)
    store.execute("DELETE FROM rm_registration WHERE registration_id = %s", (registration_id,))
    store.execute(
        "INSERT INTO rm_registration (registration_id, partner_code, customer_name, "
        "customer_domain, customer_country, product_line, conflict_key, status, value_micros, "
        "currency, expected_close, review_reasons, submitted_at, status_changed_at, "
        "protected_until, rejection_reason, deal_id) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, 'submitted', %s, %s, %s, '', %s, %s, "
        "NULL, NULL, NULL)",
        (
            registration_id,
            f["partner_code"],
            customer.name,
            customer.domain,
            customer.country,
            f["product_line"],
            conflict_key(customer.domain, f["product_line"]),
            to_micros(value.amount),
            value.currency,
            date_text(f["expected_close"]),
            at,
            at,
        ),
    )
    _relate(store, message, {})


def _relate(store: ReadStore, message: EventMessage, related: dict[str, list[UUID]]) -> None:
    """Replaces the registrations recorded behind each review reason."""
    registration_id = str(message.aggregate_id)
    store.execute(
        "DELETE FROM rm_registration_related WHERE registration_id = %s", (registration_id,)
    )
    for reason, ids in sorted(related.items()):
        for related_id in sorted({str(i) for i in ids}):
            store.execute(
                "INSERT INTO rm_registration_related (registration_id, reason, related_id) "
                "VALUES (%s, %s, %s)",
                (registration_id, reason, related_id),
            )


def _sent_to_review(store: ReadStore, message: EventMessage, f: Fields) -> None:
    _status(store, message, "in_review", review_reasons=",".join(sorted(set(f["reasons"]))))
    _relate(store, message, f["related"])


def _approved(store: ReadStore, message: EventMessage, f: Fields) -> None:
    _status(
        store,
        message,
        "approved",
        review_reasons="",
        protected_until=time_text(f["protected_until"]),
    )
    _relate(store, message, {})


def _rejected(store: ReadStore, message: EventMessage, f: Fields) -> None:
    _status(store, message, "rejected", rejection_reason=f["reason"])


def _resubmitted(store: ReadStore, message: EventMessage, f: Fields) -> None:
    customer: Customer = f["customer"]
    value: Money = f["estimated_value"]
    _status(
        store,
        message,
        "in_review",
        review_reasons="resubmitted",
        customer_name=customer.name,
        customer_country=customer.country,
        value_micros=to_micros(value.amount),
        currency=value.currency,
        expected_close=date_text(f["expected_close"]),
    )
    _relate(store, message, f["related"])


def _extended(store: ReadStore, message: EventMessage, f: Fields) -> None:
    _set(store, message, protected_until=time_text(f["protected_until"]))


def _withdrawn(store: ReadStore, message: EventMessage, f: Fields) -> None:
    _status(store, message, "withdrawn", protected_until=None)


def _converted(store: ReadStore, message: EventMessage, f: Fields) -> None:
    _status(store, message, "converted", deal_id=str(f["deal_id"]))


def _to(status: str) -> Callable[[ReadStore, EventMessage, Fields], None]:
    def move(store: ReadStore, message: EventMessage, f: Fields) -> None:
        _status(store, message, status)

    return move


def _protection_opened(store: ReadStore, message: EventMessage, f: Fields) -> None:
    protection_id = str(message.aggregate_id)
    store.execute("DELETE FROM rm_protection WHERE protection_id = %s", (protection_id,))
    store.execute(
        "INSERT INTO rm_protection (protection_id, conflict_key, holder_registration_id, "
        "holder_partner, protected_until) VALUES (%s, %s, NULL, NULL, NULL)",
        (protection_id, f["conflict_key"]),
    )


def _granted(store: ReadStore, message: EventMessage, f: Fields) -> None:
    store.execute(
        "UPDATE rm_protection SET holder_registration_id = %s, holder_partner = %s, "
        "protected_until = %s WHERE protection_id = %s",
        (
            str(f["registration_id"]),
            f["partner_code"],
            time_text(f["protected_until"]),
            str(message.aggregate_id),
        ),
    )


def _protection_extended(store: ReadStore, message: EventMessage, f: Fields) -> None:
    store.execute(
        "UPDATE rm_protection SET protected_until = %s WHERE protection_id = %s",
        (time_text(f["protected_until"]), str(message.aggregate_id)),
    )


def _released(store: ReadStore, message: EventMessage, f: Fields) -> None:
    store.execute(
        "UPDATE rm_protection SET holder_registration_id = NULL, holder_partner = NULL, "
        "protected_until = NULL WHERE protection_id = %s AND holder_registration_id = %s",
        (str(message.aggregate_id), str(f["registration_id"])),
    )


HANDLERS: dict[str, Callable[[ReadStore, EventMessage, Fields], None]] = {
    "registration.submitted": _submitted,
    "registration.sent_to_review": _sent_to_review,
    "registration.approved": _approved,
    "registration.rejected": _rejected,
    "registration.action_requested": _to("action_required"),
    "registration.resubmitted": _resubmitted,
    "registration.extended": _extended,
    "registration.withdrawn": _withdrawn,
    "registration.expired": _to("expired"),
    "registration.converted": _converted,
    "channel_protection.opened": _protection_opened,
    "channel_protection.granted": _granted,
    "channel_protection.extended": _protection_extended,
    "channel_protection.released": _released,
}

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
