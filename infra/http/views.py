"""Building response bodies from aggregates and read-model rows."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any
from uuid import UUID

from domain.deal import Deal
from domain.partner import Partner
from domain.registration import Registration
from domain.values import Customer, Money
from infra.http.responses import (
    AttributionRow,
    ConflictView,
    ContactView,
    CustomerView,
    DealPartnerView,
    DealView,
    MoneyView,
    PartnerView,
    PipelineDeal,
    PipelineTotal,
    RegistrationView,
    ReviewQueueItem,
    SupportRequestView,
)
from projections.attribution import PartnerAttribution
from projections.contract.encoding import decimal_text
from projections.pipeline import PipelineRow
from projections.registration_queue import OpenConflict, ReviewItem

# -- builders -----------------------------------------------------------------------------


def money(value: Money) -> MoneyView:
    return MoneyView(amount=decimal_text(value.amount), currency=value.currency)


def amount(value: Decimal, currency: str) -> MoneyView:
    return MoneyView(amount=decimal_text(value), currency=currency)


def amounts(by_currency: Mapping[str, Decimal]) -> list[MoneyView]:
    return [amount(v, c) for c, v in sorted(by_currency.items())]


def customer(value: Customer) -> CustomerView:
    return CustomerView(name=value.name, domain=value.domain, country=value.country)


def optional_text(value: object) -> str | None:
    return None if value is None else str(value)


def related(by_reason: Mapping[str, Sequence[UUID]]) -> dict[str, list[UUID]]:
    return {reason: list(ids) for reason, ids in sorted(by_reason.items())}


def registration_view(reg: Registration, *, show_related: bool = True) -> RegistrationView:
    return RegistrationView(
        registration_id=reg.id,
        partner_code=reg.partner_code,
        customer=customer(reg.customer),
        product_line=reg.product_line,
        conflict_key=reg.conflict_key,
        estimated_value=money(reg.estimated_value),
        expected_close=reg.expected_close,
        notes=reg.notes,
        contact=ContactView(**reg.contact) if reg.contact else None,
        status=str(reg.status),
        review_reasons=list(reg.review_reasons),
        related_registrations=related(reg.related_registrations) if show_related else {},
        protected_until=reg.protected_until,
        approved_automatically=reg.approved_automatically,
        extensions=reg.extensions,
        rejection_reason=optional_text(reg.rejection_reason),
        decision_note=reg.decision_note,
        deal_id=reg.deal_id,
        submitted_by=str(reg.submitted_by),
        submitted_at=reg.created_on,
        updated_at=reg.modified_on,
        version=reg.version,
    )


def partner_view(partner: Partner) -> PartnerView:
    return PartnerView(
        partner_code=partner.code,
        name=partner.name,
        tier=str(partner.tier),
        regions=list(partner.regions),
        suspended=partner.suspended,
        suspension_reason=partner.suspension_reason,
        version=partner.version,
    )


def deal_view(deal: Deal, notes: list[str]) -> DealView:
    return DealView(
        deal_id=deal.id,
        title=deal.title,
        customer=customer(deal.customer),
        product_line=deal.product_line,
        conflict_key=deal.conflict_key,
        amount=money(deal.amount),
        expected_close=deal.expected_close,
        owner=deal.owner,
        region=deal.region,
        pipeline=deal.pipeline,
        stage=deal.stage,
        status=str(deal.status),
        registration_id=deal.registration_id,
        sourcing_partner=deal.sourcing_partner,
        partners=[
            DealPartnerView(
                partner_code=code,
                role=str(role),
                share=decimal_text(deal.shares.get(code, Decimal(0))),
                sourcing=code == deal.sourcing_partner,
            )
            for code, role in sorted(deal.partners.items())
        ],
        support=[
            SupportRequestView(
                request_id=request_id,
                kind=request.get("kind", ""),
                note=request.get("note", ""),
                status=request.get("status", ""),
                assignee=request.get("assignee", ""),
                resolution=request.get("resolution"),
            )
            for request_id, request in sorted(deal.support.items())
        ],
        notes=notes,
        opened_at=deal.opened_at,
        stage_entered_at=deal.stage_entered_at,
        closed_at=deal.closed_at,
        loss_reason=optional_text(deal.loss_reason),
        competitor=deal.competitor,
        attributed={code: money(m) for code, m in sorted(deal.attributed.items())},
        version=deal.version,
    )


def pipeline_deal(row: PipelineRow) -> PipelineDeal:
    return PipelineDeal(
        deal_id=row.deal_id,
        title=row.title,
        customer_domain=row.customer_domain,
        product_line=row.product_line,
        pipeline=row.pipeline,
        stage=row.stage,
        amount=amount(row.amount, row.currency),
        probability=decimal_text(row.probability),
        weighted_amount=amount(row.weighted_amount, row.currency),
        sourcing_partner=row.sourcing_partner,
        influencing_partners=list(row.influencing_partners),
        owner=row.owner,
        region=row.region,
        expected_close=row.expected_close,
        opened_at=row.opened_at,
        stage_entered_at=row.stage_entered_at,
        days_in_stage=row.days_in_stage,
    )


def pipeline_totals(rows: list[PipelineRow], group_by: str) -> list[PipelineTotal]:
    """Totals over exactly the rows shown, per group and currency (never converted).
    By partner a deal counts once for each attached partner."""
    sums: dict[tuple[str | None, str], list[Any]] = {}
    for row in rows:
        if group_by == "partner":
            partners = [p for p in [row.sourcing_partner, *row.influencing_partners] if p]
            keys: list[str | None] = list(partners) or [None]
        else:
            keys = [{"stage": row.stage, "region": row.region, "currency": row.currency}[group_by]]
        for key in keys:
            entry = sums.setdefault((key, row.currency), [Decimal(0), Decimal(0), 0])
            entry[0] += row.amount
            entry[1] += row.weighted_amount
            entry[2] += 1
    ordered = sorted(sums.items(), key=lambda kv: (kv[0][0] is None, kv[0][0] or "", kv[0][1]))
    return [
        PipelineTotal(
            key=key,
            amount=amount(total, currency),
            weighted_amount=amount(weighted, currency),
            deals=count,
        )
        for (key, currency), (total, weighted, count) in ordered
    ]


def attribution_row(a: PartnerAttribution) -> AttributionRow:
    return AttributionRow(
        partner_code=a.partner_code,
        name=a.name,
        tier=a.tier,
        suspended=a.suspended,
        sourced_pipeline=amounts(a.sourced_pipeline),
        influenced_pipeline=amounts(a.influenced_pipeline),
        sourced_deals=a.sourced_deals,
        influenced_deals=a.influenced_deals,
        won_revenue=amounts(a.won_revenue),
        deals_won=a.deals_won,
        deals_lost=a.deals_lost,
        win_rate=None if a.win_rate is None else decimal_text(a.win_rate),
        average_sales_cycle_days=(
            None if a.average_sales_cycle_days is None else decimal_text(a.average_sales_cycle_days)
        ),
    )


def review_item(item: ReviewItem) -> ReviewQueueItem:
    return ReviewQueueItem(
        registration_id=item.registration_id,
        status=item.status,
        partner_code=item.partner_code,
        customer_name=item.customer_name,
        customer_domain=item.customer_domain,
        product_line=item.product_line,
        conflict_key=item.conflict_key,
        estimated_value=amount(item.value, item.currency),
        review_reasons=list(item.review_reasons),
        related_registrations=related(item.related_registrations),
        submitted_at=item.submitted_at,
        status_changed_at=item.status_changed_at,
        age_hours=decimal_text(item.age_hours),
        breaches_sla=item.breaches_sla,
    )


def conflict_view(conflict: OpenConflict) -> ConflictView:
    return ConflictView(
        conflict_key=conflict.conflict_key,
        registration_ids=list(conflict.registration_ids),
        partners=list(conflict.partners),
        holder_registration_id=conflict.holder_registration_id,
        holder_partner=conflict.holder_partner,
        protected_until=conflict.protected_until,
    )
