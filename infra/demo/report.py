"""What the demo shows after its story, all read back from its store.

The partners, registrations and deals a run created, and the review and release
history behind them, come from the stored notification log and the aggregates; the
pipeline, totals and attribution come from the read models, fed in-process from the
same log. Nothing is taken from what the scenario sent. Each table is a `Listing`
(cells as text); `infra.demo.render` draws them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from uuid import UUID

from eventsourcing.application import LocalNotificationLog
from eventsourcing.system import NotificationLogReader

from commands.ledger import DealLedger
from consumers.embedded_feed import feed, open_read_store
from domain.deal import Deal, DealStatus
from domain.partner import Partner
from domain.protection import ChannelProtection
from domain.registration import Registration, RegistrationStatus
from infra.bootstrap import Wiring
from infra.demo.formats import day, pct, short, when
from infra.store.databases import read_model_path
from infra.tables import Cell
from projections.attribution import partner_attribution
from projections.pipeline import pipeline_rows, pipeline_totals
from projections.registration_queue import review_queue

_PAGE = 1000


@dataclass(frozen=True)
class Listing:
    """A table to show: a title, headings and rows of text cells."""

    title: str
    headers: Sequence[str]
    rows: Sequence[Sequence[Cell]]


@dataclass(frozen=True)
class StoreReport:
    """The run's partners, registrations and deals, and how many events the store holds."""

    listings: Sequence[Listing]
    events: int


@dataclass(frozen=True)
class ReadModelReport:
    path: Path  # the read models' SQLite file
    fed: int  # notifications fed into it now
    listings: Sequence[Listing]
    awaiting_review: int


# -- the notification log -----------------------------------------------------------------


def stored_events(ledger: DealLedger) -> Iterator[object]:
    """Every stored domain event, in ledger order, read page by page."""
    # The application's own log serves sections of its default size (10); a log of
    # the demo's own over the same recorder serves pages of _PAGE.
    reader = NotificationLogReader(
        LocalNotificationLog(ledger.recorder, section_size=_PAGE), section_size=_PAGE
    )
    for page in reader.select(start=1):
        for notification in page:
            yield ledger.mapper.to_domain_event(notification)


def command_id(event: object) -> str:
    """The id of the command that caused `event` ("" if none)."""
    cause = getattr(event, "cause", None)
    return str(getattr(cause, "command_id", ""))


@dataclass
class _History:
    """What the report needs from the event log beyond the aggregates' current state."""

    partners: list[str] = field(default_factory=list)
    registrations: list[UUID] = field(default_factory=list)
    deals: list[UUID] = field(default_factory=list)
    review_reasons: dict[UUID, list[str]] = field(default_factory=dict)
    releases: dict[UUID, tuple[datetime, str]] = field(default_factory=dict)
    events: int = 0


def _read_history(ledger: DealLedger, command_prefix: str) -> _History:
    """The aggregates this run's commands created, and review and release history."""
    history = _History()
    for event in stored_events(ledger):
        history.events += 1
        mine = command_id(event).startswith(command_prefix)
        if isinstance(event, Partner.Onboarded) and mine:
            history.partners.append(event.code)
        elif isinstance(event, Registration.Submitted) and mine:
            history.registrations.append(event.originator_id)
        elif isinstance(event, Deal.Opened) and mine:
            history.deals.append(event.originator_id)
        elif isinstance(event, Registration.SentToReview):
            history.review_reasons.setdefault(event.originator_id, []).extend(event.reasons)
        elif isinstance(event, Registration.Resubmitted):
            history.review_reasons.setdefault(event.originator_id, []).append("resubmitted")
        elif isinstance(event, ChannelProtection.Released):
            history.releases[event.registration_id] = (event.timestamp, event.reason.value)
    return history


# -- the aggregates -------------------------------------------------------------------------


def _registration_row(reg: Registration, history: _History, now: datetime) -> list[Cell]:
    status = reg.status.value
    if reg.status is RegistrationStatus.APPROVED:
        status += " (auto)" if reg.approved_automatically else " (review)"
    elif reg.rejection_reason is not None:
        status += f": {reg.rejection_reason.value}"
    released = history.releases.get(reg.id)
    protection: list[str] = []
    if released is not None:
        protection = [f"ended {day(released[0])}", f"({released[1]})"]
    elif reg.protected_until is not None and reg.protected_until > now:
        protection = [f"until {day(reg.protected_until)}"]
    if reg.extensions:
        protection.append(f"extended x{reg.extensions}")
    return [
        short(reg.id),
        reg.partner_code,
        reg.customer.domain,
        reg.product_line,
        status,
        protection or ["-"],
        history.review_reasons.get(reg.id) or ["-"],
    ]


def _deal_row(deal: Deal) -> list[Cell]:
    state: Cell
    if deal.status is DealStatus.OPEN:
        state = f"{deal.stage} ({pct(deal.probability)})"
    elif deal.status is DealStatus.LOST:
        reason = deal.loss_reason.value if deal.loss_reason else "-"
        state = [f"lost: {reason}"] + ([f"to {deal.competitor}"] if deal.competitor else [])
    else:
        state = deal.status.value
    partners = [
        f"{p} {pct(deal.shares.get(p, Decimal(0)))} {role.value}"
        + (" (sourcing)" if p == deal.sourcing_partner else "")
        for p, role in deal.partners.items()
    ]
    attributed = [f"{p} {m}" for p, m in deal.attributed.items()] or ["-"]
    return [deal.title, state, str(deal.amount), partners or ["-"], attributed]


def read_store(ledger: DealLedger, prefix: str, now: datetime, run: int) -> StoreReport:
    """The partners, registrations and deals the run's commands created, as they are."""
    history = _read_history(ledger, prefix)
    scope = "" if run == 1 else f" (run {run})"
    partners: list[list[Cell]] = []
    for code in history.partners:
        partner = ledger.get_partner(code)
        standing = f"suspended: {partner.suspension_reason}" if partner.suspended else "active"
        partners.append(
            [partner.code, partner.name, partner.tier.value, ", ".join(partner.regions), standing]
        )
    registrations = [
        _registration_row(ledger.get_registration(rid), history, now)
        for rid in history.registrations
    ]
    deals = [_deal_row(ledger.get_deal(did)) for did in history.deals]
    return StoreReport(
        listings=[
            Listing(f"PARTNERS{scope}", ["code", "name", "tier", "regions", "standing"], partners),
            Listing(
                f"REGISTRATIONS{scope} as of {when(now)}",
                [
                    "id",
                    "partner",
                    "customer",
                    "product line",
                    "status",
                    "protection",
                    "review reasons",
                ],
                registrations,
            ),
            Listing(
                f"DEALS{scope}",
                ["title", "stage/status", "amount", "partners", "attributed revenue"],
                deals,
            ),
        ],
        events=history.events,
    )


# -- the read models ------------------------------------------------------------------------


def _money_by_currency(amounts: dict[str, Decimal]) -> str:
    return ", ".join(f"{amount:,.2f} {cur}" for cur, amount in sorted(amounts.items())) or "-"


def read_models(wiring: Wiring, now: datetime) -> ReadModelReport:
    """Embedded mode: the projectors are fed in-process from the notification log."""
    path = read_model_path(wiring.settings.sqlite_path.resolve())
    conn, store = open_read_store(path)
    try:
        fed = feed(wiring.ledger(), store)
        pipeline = [
            [
                r.title,
                r.stage,
                f"{r.amount:,.2f} {r.currency}",
                f"{r.weighted_amount:,.2f} {r.currency}",
                ", ".join(p for p in [r.sourcing_partner, *r.influencing_partners] if p) or "-",
                r.region,
                str(r.days_in_stage),
            ]
            for r in pipeline_rows(store, now=now)
        ]
        totals = [
            [
                t.key or "-",
                t.currency,
                f"{t.amount:,.2f}",
                f"{t.weighted_amount:,.2f}",
                str(t.deals),
            ]
            for t in pipeline_totals(store, "stage")
        ]
        attribution = [
            [
                a.partner_code,
                _money_by_currency(a.sourced_pipeline),
                _money_by_currency(a.influenced_pipeline),
                _money_by_currency(a.won_revenue),
                f"{a.deals_won}/{a.deals_lost}",
                "-" if a.win_rate is None else f"{a.win_rate * 100:.0f}%",
                "-" if a.average_sales_cycle_days is None else f"{a.average_sales_cycle_days}",
            ]
            for a in partner_attribution(store)
        ]
        queue = review_queue(store, now=now, sla_hours=wiring.settings.approval_sla_hours)
    finally:
        conn.close()
    return ReadModelReport(
        path=path,
        fed=fed,
        listings=[
            Listing(
                "PIPELINE (open deals)",
                ["deal", "stage", "amount", "weighted", "partners", "region", "days in stage"],
                pipeline,
            ),
            Listing(
                "PIPELINE TOTALS by stage and currency (never converted)",
                ["stage", "currency", "amount", "weighted", "deals"],
                totals,
            ),
            Listing(
                "PARTNER ATTRIBUTION",
                [
                    "partner",
                    "sourced open",
                    "influenced open",
                    "won revenue",
                    "won/lost",
                    "win rate",
                    "avg cycle days",
                ],
                attribution,
            ),
        ],
        awaiting_review=len(queue),
    )
