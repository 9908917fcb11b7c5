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

from domain.values import Money
from projections.contract.fields import Fields
from projections.contract.message import EventMessage
from projections.store import ReadStore, from_micros, parse_time, time_text, to_micros

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


# -- projector ----------------------------------------------------------------------------


def _opened(store: ReadStore, message: EventMessage, f: Fields) -> None:
    deal_id = str(message.aggregate_id)
    amount: Money = f["amount"]
    sourcing: str | None = f["sourcing_partner"]
    store.execute("DELETE FROM rm_attribution_share WHERE deal_id = %s", (deal_id,))
    store.execute("DELETE FROM rm_attribution_deal WHERE deal_id = %s", (deal_id,))
    store.execute(
        "INSERT INTO rm_attribution_deal (deal_id, status, amount_micros, currency, "
        "sourcing_partner, opened_at, closed_at) VALUES (%s, 'open', %s, %s, %s, %s, NULL)",
        (
            deal_id,
            to_micros(amount.amount),
            amount.currency,
            sourcing,
            time_text(message.occurred_at),
        ),
    )
    if sourcing is not None:
        store.execute(
            "INSERT INTO rm_attribution_share (deal_id, partner_code, sourcing, share, "
            "won_micros, won_currency) VALUES (%s, %s, 1, '100', NULL, NULL)",
            (deal_id, sourcing),
        )


def _amount_revised(store: ReadStore, message: EventMessage, f: Fields) -> None:
    amount: Money = f["amount"]
    store.execute(
        "UPDATE rm_attribution_deal SET amount_micros = %s, currency = %s WHERE deal_id = %s",
        (to_micros(amount.amount), amount.currency, str(message.aggregate_id)),
    )


def _set_shares(store: ReadStore, deal_id: str, shares: Mapping[str, Decimal]) -> None:
    """The attached partners are exactly the keys of the event's shares."""
    sourcing = store.scalar(
        "SELECT sourcing_partner FROM rm_attribution_deal WHERE deal_id = %s", (deal_id,)
    )
    store.execute("DELETE FROM rm_attribution_share WHERE deal_id = %s", (deal_id,))
    for code, share in sorted(shares.items()):
        store.execute(
            "INSERT INTO rm_attribution_share (deal_id, partner_code, sourcing, share, "
            "won_micros, won_currency) VALUES (%s, %s, %s, %s, NULL, NULL)",
            (deal_id, code, int(code == sourcing), str(share)),
        )


def _shares_changed(store: ReadStore, message: EventMessage, f: Fields) -> None:
    _set_shares(store, str(message.aggregate_id), f["shares"])


def _won(store: ReadStore, message: EventMessage, f: Fields) -> None:
    deal_id = str(message.aggregate_id)
    attributed: dict[str, Money] = f["attributed"]
    sourcing = store.scalar(
        "SELECT sourcing_partner FROM rm_attribution_deal WHERE deal_id = %s", (deal_id,)
    )
    store.execute(
        "UPDATE rm_attribution_deal SET status = 'won', closed_at = %s WHERE deal_id = %s",
        (time_text(message.occurred_at), deal_id),
    )
    store.execute(
        "UPDATE rm_attribution_share SET won_micros = NULL, won_currency = NULL WHERE deal_id = %s",
        (deal_id,),
    )
    for code, revenue in sorted(attributed.items()):
        store.execute(
            "INSERT INTO rm_attribution_share (deal_id, partner_code, sourcing, share, "
            "won_micros, won_currency) VALUES (%s, %s, %s, '0', %s, %s) "
            "ON CONFLICT (deal_id, partner_code) DO UPDATE SET "
            "won_micros = excluded.won_micros, won_currency = excluded.won_currency",
            (deal_id, code, int(code == sourcing), to_micros(revenue.amount), revenue.currency),
        )


def _lost(store: ReadStore, message: EventMessage, f: Fields) -> None:
    store.execute(
        "UPDATE rm_attribution_deal SET status = 'lost', closed_at = %s WHERE deal_id = %s",
        (time_text(message.occurred_at), str(message.aggregate_id)),
    )


def _reopened(store: ReadStore, message: EventMessage, f: Fields) -> None:
    deal_id = str(message.aggregate_id)
    store.execute(
        "UPDATE rm_attribution_deal SET status = 'open', closed_at = NULL WHERE deal_id = %s",
        (deal_id,),
    )
    store.execute(
        "UPDATE rm_attribution_share SET won_micros = NULL, won_currency = NULL WHERE deal_id = %s",
        (deal_id,),
    )


def _onboarded(store: ReadStore, message: EventMessage, f: Fields) -> None:
    partner_id = str(message.aggregate_id)
    store.execute("DELETE FROM rm_attribution_partner WHERE partner_id = %s", (partner_id,))
    store.execute(
        "INSERT INTO rm_attribution_partner (partner_id, partner_code, name, tier, suspended) "
        "VALUES (%s, %s, %s, %s, 0)",
        (partner_id, f["code"], f["name"], f["tier"]),
    )


def _tier_changed(store: ReadStore, message: EventMessage, f: Fields) -> None:
    store.execute(
        "UPDATE rm_attribution_partner SET tier = %s WHERE partner_id = %s",
        (f["tier"], str(message.aggregate_id)),
    )


def _suspension(suspended: bool) -> Callable[[ReadStore, EventMessage, Fields], None]:
    def mark(store: ReadStore, message: EventMessage, f: Fields) -> None:
        store.execute(
            "UPDATE rm_attribution_partner SET suspended = %s WHERE partner_id = %s",
            (int(suspended), str(message.aggregate_id)),
        )

    return mark


HANDLERS: dict[str, Callable[[ReadStore, EventMessage, Fields], None]] = {
    "deal.opened": _opened,
    "deal.amount_revised": _amount_revised,
    "deal.partner_attached": _shares_changed,
    "deal.partner_detached": _shares_changed,
    "deal.attribution_split_set": _shares_changed,
    "deal.won": _won,
    "deal.lost": _lost,
    "deal.reopened": _reopened,
    "partner.onboarded": _onboarded,
    "partner.tier_changed": _tier_changed,
    "partner.suspended": _suspension(True),
    "partner.reinstated": _suspension(False),
}

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
