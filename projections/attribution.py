"""The partner attribution read model: sourced vs influenced pipeline, won revenue by
share, win rate and sales-cycle length per partner.

Stored per deal (its status, amount and attached partners with their shares and the
revenue attributed to each when won) and per onboarded partner; the per-partner
figures are aggregated at query time, so a reopen simply clears the deal's outcome and
rows never depend on the order in which different deals' events arrive.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from projections.contract.models import EventMessage
from projections.engine import Doc, Fold, Projection, Row, row_of, rows_of, with_rows
from projections.store import ReadStore, Table, from_micros, parse_time, time_text, to_micros

_RATE = Decimal("0.0001")
_DAYS = Decimal("0.01")
_MICROSECONDS_PER_DAY = Decimal(86_400 * 10**6)


@dataclass(frozen=True)
class PartnerAttribution:
    partner_code: str
    name: str | None  # None until the partner's onboarding is projected
    tier: str | None
    suspended: bool
    sourced_pipeline: dict[str, Decimal] = field(default_factory=dict)  # currency -> open amount
    influenced_pipeline: dict[str, Decimal] = field(default_factory=dict)
    sourced_deals: int = 0  # open deals the partner registered
    influenced_deals: int = 0  # open deals the partner is attached to otherwise
    won_revenue: dict[str, Decimal] = field(default_factory=dict)  # currency -> attributed
    deals_won: int = 0
    deals_lost: int = 0
    win_rate: Decimal | None = None  # won / (won + lost), to 4 places; None without closes
    average_sales_cycle_days: Decimal | None = None  # won deals, opened -> won, to 0.01 day


# -- the folds ---------------------------------------------------------------------------

PARTNER_ROWS = Table(
    "rm_attribution_partner",
    "partner",
    (
        "partner_id TEXT NOT NULL",
        "partner_code TEXT NOT NULL",
        "name TEXT NOT NULL",
        "tier TEXT NOT NULL",
        "suspended INTEGER NOT NULL",
    ),
    ("partner_id",),
)
DEALS = Table(
    "rm_attribution_deal",
    "deal",
    (
        "deal_id TEXT NOT NULL",
        "status TEXT NOT NULL",
        "amount_micros BIGINT NOT NULL",
        "currency TEXT NOT NULL",
        "sourcing_partner TEXT",
        "opened_at TEXT NOT NULL",
        "closed_at TEXT",
    ),
    ("deal_id",),
)
SHARES = Table(
    "rm_attribution_share",
    "deal",
    (
        "deal_id TEXT NOT NULL",
        "partner_code TEXT NOT NULL",
        "sourcing INTEGER NOT NULL",
        "share TEXT NOT NULL",
        "won_micros BIGINT",  # revenue attributed when the deal was won, else NULL
        "won_currency TEXT",
    ),
    ("deal_id", "partner_code"),
    (("partner_code",),),
)

Handler = Callable[[Doc, EventMessage, Any], Doc]


def _share(deal_id: str, code: str, sourcing: bool, share: str) -> Row:
    return {
        "deal_id": deal_id,
        "partner_code": code,
        "sourcing": int(sourcing),
        "share": share,
        "won_micros": None,
        "won_currency": None,
    }


def _opened(doc: Doc, m: EventMessage, d: Any) -> Doc:
    deal = {
        "deal_id": m.aggregate_id,
        "status": "open",
        "amount_micros": to_micros(d.amount.amount),
        "currency": d.amount.currency,
        "sourcing_partner": d.sourcing_partner,
        "opened_at": time_text(m.occurred_at),
        "closed_at": None,
    }
    shares = []
    if d.sourcing_partner is not None:
        shares.append(_share(m.aggregate_id, d.sourcing_partner, True, "100"))
    return {DEALS.name: (deal,), SHARES.name: tuple(shares)}


def _amount_revised(doc: Doc, m: EventMessage, d: Any) -> Doc:
    deal = row_of(doc, DEALS.name)
    if deal is None:
        return doc
    revised = {**deal, "amount_micros": to_micros(d.amount.amount), "currency": d.amount.currency}
    return with_rows(doc, DEALS.name, [revised])


def _shares_changed(doc: Doc, m: EventMessage, d: Any) -> Doc:
    """The attached partners are exactly the keys of the event's shares."""
    deal = row_of(doc, DEALS.name)
    sourcing = deal["sourcing_partner"] if deal is not None else None
    shares = [
        _share(m.aggregate_id, code, code == sourcing, str(share))
        for code, share in sorted(d.shares.items())
    ]
    return with_rows(doc, SHARES.name, shares)


def _won(doc: Doc, m: EventMessage, d: Any) -> Doc:
    deal = row_of(doc, DEALS.name)
    sourcing = deal["sourcing_partner"] if deal is not None else None
    shares = {
        s["partner_code"]: {**s, "won_micros": None, "won_currency": None}
        for s in rows_of(doc, SHARES.name)
    }
    for code, revenue in sorted(d.attributed.items()):
        share = shares.get(code) or _share(m.aggregate_id, code, code == sourcing, "0")
        shares[code] = {
            **share,
            "won_micros": to_micros(revenue.amount),
            "won_currency": revenue.currency,
        }
    doc = with_rows(doc, SHARES.name, [shares[code] for code in sorted(shares)])
    if deal is not None:
        doc = with_rows(
            doc, DEALS.name, [{**deal, "status": "won", "closed_at": time_text(m.occurred_at)}]
        )
    return doc


def _lost(doc: Doc, m: EventMessage, d: Any) -> Doc:
    deal = row_of(doc, DEALS.name)
    if deal is None:
        return doc
    lost = {**deal, "status": "lost", "closed_at": time_text(m.occurred_at)}
    return with_rows(doc, DEALS.name, [lost])


def _reopened(doc: Doc, m: EventMessage, d: Any) -> Doc:
    deal = row_of(doc, DEALS.name)
    if deal is not None:
        doc = with_rows(doc, DEALS.name, [{**deal, "status": "open", "closed_at": None}])
    shares = [{**s, "won_micros": None, "won_currency": None} for s in rows_of(doc, SHARES.name)]
    return with_rows(doc, SHARES.name, shares)


_DEAL_EVENTS: dict[str, Handler] = {
    "deal.opened": _opened,
    "deal.amount_revised": _amount_revised,
    "deal.partner_attached": _shares_changed,
    "deal.partner_detached": _shares_changed,
    "deal.attribution_split_set": _shares_changed,
    "deal.won": _won,
    "deal.lost": _lost,
    "deal.reopened": _reopened,
}


def _onboarded(doc: Doc, m: EventMessage, d: Any) -> Doc:
    partner = {
        "partner_id": m.aggregate_id,
        "partner_code": d.code,
        "name": d.name,
        "tier": d.tier,
        "suspended": 0,
    }
    return {PARTNER_ROWS.name: (partner,)}


def _partner_change(**changes: Any) -> Handler:
    def change(doc: Doc, m: EventMessage, d: Any) -> Doc:
        partner = row_of(doc, PARTNER_ROWS.name)
        if partner is None:
            return doc
        values = {k: getattr(d, v) if isinstance(v, str) else v for k, v in changes.items()}
        return with_rows(doc, PARTNER_ROWS.name, [{**partner, **values}])

    return change


_PARTNER_EVENTS: dict[str, Handler] = {
    "partner.onboarded": _onboarded,
    "partner.tier_changed": _partner_change(tier="tier"),
    "partner.suspended": _partner_change(suspended=1),
    "partner.reinstated": _partner_change(suspended=0),
}


def _fold(events: Mapping[str, Handler]) -> Fold:
    def fold(doc: Doc, message: EventMessage) -> Doc:
        handler = events.get(message.name)
        return doc if handler is None else handler(doc, message, message.data)

    return fold


ATTRIBUTION = Projection(
    "attribution",
    (PARTNER_ROWS, DEALS, SHARES),
    {"deal": _fold(_DEAL_EVENTS), "partner": _fold(_PARTNER_EVENTS)},
)

# -- query --------------------------------------------------------------------------------


class _Tally:
    def __init__(self) -> None:
        self.name: str | None = None
        self.tier: str | None = None
        self.suspended = False
        self.sourced: dict[str, Decimal] = {}
        self.influenced: dict[str, Decimal] = {}
        self.sourced_deals = 0
        self.influenced_deals = 0
        self.won_revenue: dict[str, Decimal] = {}
        self.won = 0
        self.lost = 0
        self.cycle = timedelta(0)


def partner_attribution(store: ReadStore) -> list[PartnerAttribution]:
    """Every onboarded partner and every partner attached to a deal, by partner code."""
    tallies: dict[str, _Tally] = {}

    def tally(code: str) -> _Tally:
        return tallies.setdefault(code, _Tally())

    for code, name, tier, suspended in store.fetchall(
        "SELECT partner_code, name, tier, suspended FROM rm_attribution_partner"
    ):
        entry = tally(code)
        entry.name, entry.tier, entry.suspended = name, tier, bool(suspended)

    open_rows: list[tuple[Any, ...]] = store.fetchall(
        "SELECT s.partner_code, s.sourcing, d.currency, SUM(d.amount_micros), COUNT(*) "
        "FROM rm_attribution_share s JOIN rm_attribution_deal d ON d.deal_id = s.deal_id "
        "WHERE d.status = 'open' GROUP BY s.partner_code, s.sourcing, d.currency"
    )
    for code, sourcing, currency, amount, count in open_rows:
        entry = tally(code)
        if int(sourcing):
            entry.sourced[currency] = from_micros(amount, currency)
            entry.sourced_deals += int(count)
        else:
            entry.influenced[currency] = from_micros(amount, currency)
            entry.influenced_deals += int(count)

    for code, currency, revenue in store.fetchall(
        "SELECT s.partner_code, s.won_currency, SUM(s.won_micros) "
        "FROM rm_attribution_share s JOIN rm_attribution_deal d ON d.deal_id = s.deal_id "
        "WHERE d.status = 'won' AND s.won_micros IS NOT NULL "
        "GROUP BY s.partner_code, s.won_currency"
    ):
        tally(code).won_revenue[currency] = from_micros(revenue, currency)

    for code, status, opened_at, closed_at in store.fetchall(
        "SELECT s.partner_code, d.status, d.opened_at, d.closed_at "
        "FROM rm_attribution_share s JOIN rm_attribution_deal d ON d.deal_id = s.deal_id "
        "WHERE d.status IN ('won', 'lost')"
    ):
        entry = tally(code)
        if status == "won":
            entry.won += 1
            entry.cycle += parse_time(closed_at) - parse_time(opened_at)
        else:
            entry.lost += 1

    return [_attribution(code, tallies[code]) for code in sorted(tallies)]


def _attribution(code: str, t: _Tally) -> PartnerAttribution:
    closed = t.won + t.lost
    win_rate = (
        (Decimal(t.won) / Decimal(closed)).quantize(_RATE, rounding=ROUND_HALF_EVEN)
        if closed
        else None
    )
    cycle = None
    if t.won:
        microseconds = Decimal(t.cycle // timedelta(microseconds=1))
        cycle = (microseconds / _MICROSECONDS_PER_DAY / t.won).quantize(
            _DAYS, rounding=ROUND_HALF_EVEN
        )
    return PartnerAttribution(
        partner_code=code,
        name=t.name,
        tier=t.tier,
        suspended=t.suspended,
        sourced_pipeline=dict(sorted(t.sourced.items())),
        influenced_pipeline=dict(sorted(t.influenced.items())),
        sourced_deals=t.sourced_deals,
        influenced_deals=t.influenced_deals,
        won_revenue=dict(sorted(t.won_revenue.items())),
        deals_won=t.won,
        deals_lost=t.lost,
        win_rate=win_rate,
        average_sales_cycle_days=cycle,
    )
