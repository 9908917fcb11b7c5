"""The pipeline read model: one row per deal, open deals by stage/partner/region/currency.

Rows of won and lost deals are kept (status won/lost) so a reopen picks them up again;
the queries show open deals only. Every row is derived from its own deal's events
alone, so rows come out the same whatever order different deals' events arrive in.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal
from uuid import UUID

from domain.pipeline import pipeline_named
from projections.contract.models import EventMessage
from projections.engine import Doc, Projection, Row, row_of, rows_of, with_rows
from projections.store import (
    ReadStore,
    Table,
    from_micros,
    parse_date,
    parse_optional_time,
    parse_time,
    time_text,
    to_micros,
    weighted_micros,
)

Dimension = Literal["stage", "partner", "region", "currency"]


@dataclass(frozen=True)
class PipelineRow:
    deal_id: UUID
    title: str
    customer_domain: str
    product_line: str
    pipeline: str
    stage: str
    status: str
    amount: Decimal
    currency: str
    probability: Decimal  # percent
    weighted_amount: Decimal
    sourcing_partner: str | None  # the registering partner, while attached
    influencing_partners: tuple[str, ...]  # the other attached partners
    owner: str
    region: str
    expected_close: date
    opened_at: datetime
    stage_entered_at: datetime
    closed_at: datetime | None
    days_in_stage: int


@dataclass(frozen=True)
class PipelineTotal:
    """Open pipeline of one group in one currency (currencies are never added up)."""

    key: str | None  # the stage, partner, region or currency; None: deals without partners
    currency: str
    amount: Decimal
    weighted_amount: Decimal
    deals: int


# -- the fold ----------------------------------------------------------------------------

DEALS = Table(
    "rm_pipeline_deal",
    "deal",
    (
        "deal_id TEXT NOT NULL",
        "title TEXT NOT NULL",
        "customer_name TEXT NOT NULL",
        "customer_domain TEXT NOT NULL",
        "product_line TEXT NOT NULL",
        "pipeline TEXT NOT NULL",
        "stage TEXT NOT NULL",
        "status TEXT NOT NULL",  # open | won | lost (kept so a reopen works)
        "amount_micros BIGINT NOT NULL",
        "currency TEXT NOT NULL",
        "probability TEXT NOT NULL",  # percent, exact decimal text
        "weighted_micros BIGINT NOT NULL",  # amount * probability / 100, to the micro-unit
        "sourcing_partner TEXT",  # the registering partner; NULL for direct deals
        "registration_id TEXT",
        "owner TEXT NOT NULL",
        "region TEXT NOT NULL",
        "expected_close TEXT NOT NULL",
        "opened_at TEXT NOT NULL",
        "stage_entered_at TEXT NOT NULL",
        "closed_at TEXT",
    ),
    ("deal_id",),
    (("status", "stage"),),
)
PARTNERS = Table(
    "rm_pipeline_partner",
    "deal",
    (
        "deal_id TEXT NOT NULL",
        "partner_code TEXT NOT NULL",
        "role TEXT NOT NULL",
        "share TEXT NOT NULL",  # attribution percent, exact decimal text
        "sourcing INTEGER NOT NULL",  # 1 for the registering partner
    ),
    ("deal_id", "partner_code"),
    (("partner_code",),),
)


def _opened(doc: Doc, m: EventMessage, d: Any) -> Doc:
    amount = d.amount
    probability = pipeline_named(d.pipeline).probability(d.stage)
    micros = to_micros(amount.amount)
    at = time_text(m.occurred_at)
    deal = {
        "deal_id": m.aggregate_id,
        "title": d.title,
        "customer_name": d.customer.name,
        "customer_domain": d.customer.domain,
        "product_line": d.product_line,
        "pipeline": d.pipeline,
        "stage": d.stage,
        "status": "open",
        "amount_micros": micros,
        "currency": amount.currency,
        "probability": str(probability),
        "weighted_micros": weighted_micros(micros, probability),
        "sourcing_partner": d.sourcing_partner,
        "registration_id": d.registration_id,
        "owner": d.owner,
        "region": d.region,
        "expected_close": d.expected_close,
        "opened_at": at,
        "stage_entered_at": at,
        "closed_at": None,
    }
    partners = []
    if d.sourcing_partner is not None:
        partners.append(
            {
                "deal_id": m.aggregate_id,
                "partner_code": d.sourcing_partner,
                "role": d.sourcing_role or "reseller",
                "share": "100",
                "sourcing": 1,
            }
        )
    return {DEALS.name: (deal,), PARTNERS.name: tuple(partners)}


def _restaged(deal: Row, stage: str, at: str) -> Row:
    probability = pipeline_named(deal["pipeline"]).probability(stage)
    return {
        **deal,
        "stage": stage,
        "stage_entered_at": at,
        "probability": str(probability),
        "weighted_micros": weighted_micros(deal["amount_micros"], probability),
    }


def _stage_changed(doc: Doc, m: EventMessage, d: Any) -> Doc:
    deal = row_of(doc, DEALS.name)
    if deal is None:
        return doc
    return with_rows(doc, DEALS.name, [_restaged(deal, d.to_stage, time_text(m.occurred_at))])


def _amount_revised(doc: Doc, m: EventMessage, d: Any) -> Doc:
    deal = row_of(doc, DEALS.name)
    if deal is None:
        return doc
    micros = to_micros(d.amount.amount)
    revised = {
        **deal,
        "amount_micros": micros,
        "currency": d.amount.currency,
        "weighted_micros": weighted_micros(micros, Decimal(deal["probability"])),
    }
    return with_rows(doc, DEALS.name, [revised])


def _close_date_revised(doc: Doc, m: EventMessage, d: Any) -> Doc:
    deal = row_of(doc, DEALS.name)
    if deal is None:
        return doc
    return with_rows(doc, DEALS.name, [{**deal, "expected_close": d.expected_close}])


def _partners(doc: Doc, shares: Mapping[str, Decimal], new_roles: Mapping[str, str]) -> Doc:
    """The attached partners are exactly the keys of the event's shares."""
    deal = row_of(doc, DEALS.name)
    if deal is None:
        return doc
    roles = {p["partner_code"]: p["role"] for p in rows_of(doc, PARTNERS.name)}
    roles.update(new_roles)
    partners = [
        {
            "deal_id": deal["deal_id"],
            "partner_code": code,
            "role": roles.get(code, ""),
            "share": str(share),
            "sourcing": int(code == deal["sourcing_partner"]),
        }
        for code, share in sorted(shares.items())
    ]
    return with_rows(doc, PARTNERS.name, partners)


def _partner_attached(doc: Doc, m: EventMessage, d: Any) -> Doc:
    return _partners(doc, d.shares, {d.partner_code: d.role})


def _shares_changed(doc: Doc, m: EventMessage, d: Any) -> Doc:
    return _partners(doc, d.shares, {})


def _closed(status: str) -> Handler:
    def close(doc: Doc, m: EventMessage, d: Any) -> Doc:
        deal = row_of(doc, DEALS.name)
        if deal is None:
            return doc
        closed = {**deal, "status": status, "closed_at": time_text(m.occurred_at)}
        return with_rows(doc, DEALS.name, [closed])

    return close


def _reopened(doc: Doc, m: EventMessage, d: Any) -> Doc:
    deal = row_of(doc, DEALS.name)
    if deal is None:
        return doc
    reopened = {**deal, "status": "open", "closed_at": None}
    return with_rows(doc, DEALS.name, [_restaged(reopened, d.stage, time_text(m.occurred_at))])


Handler = Callable[[Doc, EventMessage, Any], Doc]

_DEAL_EVENTS: dict[str, Handler] = {
    "deal.opened": _opened,
    "deal.stage_changed": _stage_changed,
    "deal.amount_revised": _amount_revised,
    "deal.close_date_revised": _close_date_revised,
    "deal.partner_attached": _partner_attached,
    "deal.partner_detached": _shares_changed,
    "deal.attribution_split_set": _shares_changed,
    "deal.won": _closed("won"),
    "deal.lost": _closed("lost"),
    "deal.reopened": _reopened,
}


def fold_deal(doc: Doc, message: EventMessage) -> Doc:
    """A deal's pipeline rows after `message` (one of that deal's events)."""
    handler = _DEAL_EVENTS.get(message.name)
    return doc if handler is None else handler(doc, message, message.data)


PIPELINE = Projection("pipeline", (DEALS, PARTNERS), {"deal": fold_deal})

# -- queries ------------------------------------------------------------------------------

_ROW_COLUMNS = (
    "d.deal_id, d.title, d.customer_domain, d.product_line, d.pipeline, d.stage, d.status, "
    "d.amount_micros, d.currency, d.probability, d.weighted_micros, d.sourcing_partner, "
    "d.owner, d.region, d.expected_close, d.opened_at, d.stage_entered_at, d.closed_at"
)


def pipeline_rows(
    store: ReadStore,
    *,
    now: datetime,
    partner: str | None = None,
    stage: str | None = None,
    region: str | None = None,
    currency: str | None = None,
) -> list[PipelineRow]:
    """Open deals, by expected close date; `partner` matches any attached partner."""
    where = ["d.status = 'open'"]
    params: list[Any] = []
    for column, value in (("d.stage", stage), ("d.region", region), ("d.currency", currency)):
        if value is not None:
            where.append(f"{column} = %s")
            params.append(value)
    if partner is not None:
        where.append(
            "EXISTS (SELECT 1 FROM rm_pipeline_partner p "
            "WHERE p.deal_id = d.deal_id AND p.partner_code = %s)"
        )
        params.append(partner)
    rows = store.fetchall(
        f"SELECT {_ROW_COLUMNS} FROM rm_pipeline_deal d WHERE {' AND '.join(where)} "
        "ORDER BY d.expected_close, d.deal_id",
        params,
    )
    attached: dict[str, list[tuple[str, int]]] = {}
    for deal_id, code, sourcing in store.fetchall(
        "SELECT p.deal_id, p.partner_code, p.sourcing FROM rm_pipeline_partner p "
        "JOIN rm_pipeline_deal d ON d.deal_id = p.deal_id WHERE d.status = 'open' "
        "ORDER BY p.deal_id, p.partner_code"
    ):
        attached.setdefault(deal_id, []).append((code, int(sourcing)))
    result = []
    for row in rows:
        partners = attached.get(row[0], [])
        entered = parse_time(row[16])
        result.append(
            PipelineRow(
                deal_id=UUID(row[0]),
                title=row[1],
                customer_domain=row[2],
                product_line=row[3],
                pipeline=row[4],
                stage=row[5],
                status=row[6],
                amount=from_micros(row[7], row[8]),
                currency=row[8],
                probability=Decimal(row[9]),
                weighted_amount=from_micros(row[10], row[8]),
                sourcing_partner=next((code for code, src in partners if src), None),
                influencing_partners=tuple(code for code, src in partners if not src),
                owner=row[12],
                region=row[13],
                expected_close=parse_date(row[14]),
                opened_at=parse_time(row[15]),
                stage_entered_at=entered,
                closed_at=parse_optional_time(row[17]),
                days_in_stage=max((now - entered).days, 0),
            )
        )
    return result


_GROUP_COLUMN: dict[str, str] = {
    "stage": "d.stage",
    "partner": "p.partner_code",
    "region": "d.region",
    "currency": "d.currency",
}


def pipeline_totals(store: ReadStore, by: Dimension) -> list[PipelineTotal]:
    """Open amount, weighted amount and deal count per `by` and currency.

    By partner a deal counts once for each attached partner; deals without partners
    are grouped under key None."""
    if by not in _GROUP_COLUMN:
        raise ValueError(f"cannot group the pipeline by {by!r}; use one of {list(_GROUP_COLUMN)}")
    column = _GROUP_COLUMN[by]
    join = "LEFT JOIN rm_pipeline_partner p ON p.deal_id = d.deal_id " if by == "partner" else ""
    rows = store.fetchall(
        f"SELECT {column}, d.currency, SUM(d.amount_micros), SUM(d.weighted_micros), COUNT(*) "
        f"FROM rm_pipeline_deal d {join}WHERE d.status = 'open' "
        f"GROUP BY {column}, d.currency"
    )
    totals = [
        PipelineTotal(
            key=key,
            currency=currency,
            amount=from_micros(amount, currency),
            weighted_amount=from_micros(weighted, currency),
            deals=int(count),
        )
        for key, currency, amount, weighted, count in rows
    ]
    return sorted(totals, key=lambda t: (t.key is None, t.key or "", t.currency))
