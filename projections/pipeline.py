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
from domain.values import Customer, Money
from projections.contract.fields import Fields
from projections.contract.message import EventMessage
from projections.store import (
    ReadStore,
    date_text,
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


# -- projector ----------------------------------------------------------------------------


def _deal(store: ReadStore, deal_id: str) -> tuple[Any, ...] | None:
    return store.fetchone(
        "SELECT pipeline, stage, amount_micros, probability, sourcing_partner "
        "FROM rm_pipeline_deal WHERE deal_id = %s",
        (deal_id,),
    )


def _opened(store: ReadStore, message: EventMessage, f: Fields) -> None:
    deal_id = str(message.aggregate_id)
    at = time_text(message.occurred_at)
    amount: Money = f["amount"]
    customer: Customer = f["customer"]
    probability = pipeline_named(f["pipeline"]).probability(f["stage"])
    micros = to_micros(amount.amount)
    store.execute("DELETE FROM rm_pipeline_partner WHERE deal_id = %s", (deal_id,))
    store.execute("DELETE FROM rm_pipeline_deal WHERE deal_id = %s", (deal_id,))
    store.execute(
        "INSERT INTO rm_pipeline_deal (deal_id, title, customer_name, customer_domain, "
        "product_line, pipeline, stage, status, amount_micros, currency, probability, "
        "weighted_micros, sourcing_partner, registration_id, owner, region, expected_close, "
        "opened_at, stage_entered_at, closed_at) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, 'open', %s, %s, %s, %s, %s, %s, %s, %s, %s, "
        "%s, %s, NULL)",
        (
            deal_id,
            f["title"],
            customer.name,
            customer.domain,
            f["product_line"],
            f["pipeline"],
            f["stage"],
            micros,
            amount.currency,
            str(probability),
            weighted_micros(micros, probability),
            f["sourcing_partner"],
            None if f["registration_id"] is None else str(f["registration_id"]),
            f["owner"],
            f["region"],
            date_text(f["expected_close"]),
            at,
            at,
        ),
    )
    if f["sourcing_partner"] is not None:
        store.execute(
            "INSERT INTO rm_pipeline_partner (deal_id, partner_code, role, share, sourcing) "
            "VALUES (%s, %s, %s, '100', 1)",
            (deal_id, f["sourcing_partner"], f["sourcing_role"] or "reseller"),
        )


def _restage(store: ReadStore, deal_id: str, stage: str, at: str) -> None:
    row = _deal(store, deal_id)
    if row is None:
        return
    probability = pipeline_named(row[0]).probability(stage)
    store.execute(
        "UPDATE rm_pipeline_deal SET stage = %s, stage_entered_at = %s, probability = %s, "
        "weighted_micros = %s WHERE deal_id = %s",
        (stage, at, str(probability), weighted_micros(int(row[2]), probability), deal_id),
    )


def _stage_changed(store: ReadStore, message: EventMessage, f: Fields) -> None:
    _restage(store, str(message.aggregate_id), f["to_stage"], time_text(message.occurred_at))


def _amount_revised(store: ReadStore, message: EventMessage, f: Fields) -> None:
    deal_id = str(message.aggregate_id)
    row = _deal(store, deal_id)
    if row is None:
        return
    amount: Money = f["amount"]
    micros = to_micros(amount.amount)
    store.execute(
        "UPDATE rm_pipeline_deal SET amount_micros = %s, currency = %s, weighted_micros = %s "
        "WHERE deal_id = %s",
        (micros, amount.currency, weighted_micros(micros, Decimal(row[3])), deal_id),
    )


def _close_date_revised(store: ReadStore, message: EventMessage, f: Fields) -> None:
    store.execute(
        "UPDATE rm_pipeline_deal SET expected_close = %s WHERE deal_id = %s",
        (date_text(f["expected_close"]), str(message.aggregate_id)),
    )


def _set_partners(
    store: ReadStore, deal_id: str, shares: Mapping[str, Decimal], new_roles: Mapping[str, str]
) -> None:
    """The attached partners are exactly the keys of the event's shares."""
    row = _deal(store, deal_id)
    if row is None:
        return
    sourcing = row[4]
    roles = dict(
        store.fetchall(
            "SELECT partner_code, role FROM rm_pipeline_partner WHERE deal_id = %s", (deal_id,)
        )
    )
    roles.update(new_roles)
    store.execute("DELETE FROM rm_pipeline_partner WHERE deal_id = %s", (deal_id,))
    for code, share in sorted(shares.items()):
        store.execute(
            "INSERT INTO rm_pipeline_partner (deal_id, partner_code, role, share, sourcing) "
            "VALUES (%s, %s, %s, %s, %s)",
            (deal_id, code, roles.get(code, ""), str(share), int(code == sourcing)),
        )


def _partner_attached(store: ReadStore, message: EventMessage, f: Fields) -> None:
    _set_partners(store, str(message.aggregate_id), f["shares"], {f["partner_code"]: f["role"]})


def _shares_changed(store: ReadStore, message: EventMessage, f: Fields) -> None:
    _set_partners(store, str(message.aggregate_id), f["shares"], {})


def _closed(status: str) -> Callable[[ReadStore, EventMessage, Fields], None]:
    def close(store: ReadStore, message: EventMessage, f: Fields) -> None:
        store.execute(
            "UPDATE rm_pipeline_deal SET status = %s, closed_at = %s WHERE deal_id = %s",
            (status, time_text(message.occurred_at), str(message.aggregate_id)),
        )

    return close


def _reopened(store: ReadStore, message: EventMessage, f: Fields) -> None:
    deal_id = str(message.aggregate_id)
    store.execute(
        "UPDATE rm_pipeline_deal SET status = 'open', closed_at = NULL WHERE deal_id = %s",
        (deal_id,),
    )
    _restage(store, deal_id, f["stage"], time_text(message.occurred_at))


HANDLERS: dict[str, Callable[[ReadStore, EventMessage, Fields], None]] = {
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
