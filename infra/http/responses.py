"""Response bodies, as pydantic models so the OpenAPI document states them exactly.

Money is ``{"amount": "<exact decimal text>", "currency": "USD"}`` — never a float,
never converted; percentages and shares are exact decimal text as well.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, Field


class MoneyView(BaseModel):
    amount: str = Field(description="exact decimal text, e.g. 180000.00")
    currency: str = Field(description="ISO 4217 code")


class CustomerView(BaseModel):
    name: str
    domain: str
    country: str


class Freshness(BaseModel):
    source: str = Field(
        description="`ledger` (read from the event store: always current) or the read model"
    )
    position: int = Field(description="the last ledger position this answer reflects")


class CommandAccepted(BaseModel):
    command_id: str = Field(description="the Idempotency-Key (sent or generated)")
    command_type: str
    aggregate_id: str | None
    position: int = Field(description="ledger position written; pass as ?min_position=")
    result: dict[str, Any]


class ContactView(BaseModel):
    name: str
    email: str
    phone: str


class RegistrationView(BaseModel):
    registration_id: UUID
    partner_code: str
    customer: CustomerView
    product_line: str
    conflict_key: str
    estimated_value: MoneyView
    expected_close: date
    notes: str
    contact: ContactView | None = Field(
        description="the person at the customer, when given; personal data: reads "
        "[erased] once the customer is erased"
    )
    status: str
    review_reasons: list[str]
    related_registrations: dict[str, list[UUID]] = Field(
        description="for a review reason, the registrations that caused it (the key's "
        "holder, its other claimants, near-duplicates), as recorded when last (re)submitted; "
        "empty for partners"
    )
    protected_until: datetime | None
    approved_automatically: bool
    extensions: int
    rejection_reason: str | None
    decision_note: str
    deal_id: UUID | None
    submitted_by: str
    submitted_at: datetime
    updated_at: datetime
    version: int


class RegistrationResponse(BaseModel):
    registration: RegistrationView
    freshness: Freshness


class RegistrationRow(BaseModel):
    registration_id: UUID
    partner_code: str
    customer: CustomerView
    product_line: str
    conflict_key: str
    status: str
    estimated_value: MoneyView
    expected_close: date
    review_reasons: list[str]
    submitted_at: datetime
    status_changed_at: datetime
    protected_until: datetime | None
    rejection_reason: str | None
    deal_id: UUID | None


class RegistrationList(BaseModel):
    registrations: list[RegistrationRow]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page")
    freshness: Freshness


class PartnerView(BaseModel):
    partner_code: str
    name: str
    tier: str
    regions: list[str]
    suspended: bool
    suspension_reason: str
    version: int


class PartnerResponse(BaseModel):
    partner: PartnerView
    freshness: Freshness


class DealPartnerView(BaseModel):
    partner_code: str
    role: str
    share: str = Field(description="attribution percent, exact decimal text")
    sourcing: bool


class SupportRequestView(BaseModel):
    request_id: str
    kind: str
    note: str
    status: str
    assignee: str
    resolution: str | None


class DealView(BaseModel):
    deal_id: UUID
    title: str
    customer: CustomerView
    product_line: str
    conflict_key: str
    amount: MoneyView
    expected_close: date
    owner: str
    region: str
    pipeline: str
    stage: str
    status: str
    registration_id: UUID | None
    sourcing_partner: str | None
    partners: list[DealPartnerView]
    support: list[SupportRequestView]
    notes: list[str]
    opened_at: datetime
    stage_entered_at: datetime
    closed_at: datetime | None
    loss_reason: str | None
    competitor: str | None
    attributed: dict[str, MoneyView]
    version: int


class DealResponse(BaseModel):
    deal: DealView
    freshness: Freshness


class PipelineDeal(BaseModel):
    deal_id: UUID
    title: str
    customer_domain: str
    product_line: str
    pipeline: str
    stage: str
    amount: MoneyView
    probability: str = Field(description="percent, exact decimal text")
    weighted_amount: MoneyView
    sourcing_partner: str | None
    influencing_partners: list[str]
    owner: str
    region: str
    expected_close: date
    opened_at: datetime
    stage_entered_at: datetime
    days_in_stage: int


class PipelineTotal(BaseModel):
    key: str | None = Field(description="the group; null: deals without partners")
    amount: MoneyView
    weighted_amount: MoneyView
    deals: int


class PipelineResponse(BaseModel):
    deals: list[PipelineDeal]
    group_by: str
    totals: list[PipelineTotal] = Field(description="over the deals listed, per group and currency")
    freshness: Freshness


class AttributionRow(BaseModel):
    partner_code: str
    name: str | None
    tier: str | None
    suspended: bool
    sourced_pipeline: list[MoneyView]
    influenced_pipeline: list[MoneyView]
    sourced_deals: int
    influenced_deals: int
    won_revenue: list[MoneyView]
    deals_won: int
    deals_lost: int
    win_rate: str | None = Field(description="won / (won + lost), exact decimal text")
    average_sales_cycle_days: str | None


class AttributionResponse(BaseModel):
    partners: list[AttributionRow]
    freshness: Freshness


class ReviewQueueItem(BaseModel):
    registration_id: UUID
    status: str
    partner_code: str
    customer_name: str
    customer_domain: str
    product_line: str
    conflict_key: str
    estimated_value: MoneyView
    review_reasons: list[str]
    related_registrations: dict[str, list[UUID]] = Field(
        description="for a review reason, the registrations that caused it (the key's "
        "holder, its other claimants, near-duplicates), as recorded when last (re)submitted"
    )
    submitted_at: datetime
    status_changed_at: datetime
    age_hours: str
    breaches_sla: bool


class ConflictView(BaseModel):
    conflict_key: str
    registration_ids: list[UUID]
    partners: list[str]
    holder_registration_id: UUID | None
    holder_partner: str | None
    protected_until: datetime | None


class ReviewQueueResponse(BaseModel):
    items: list[ReviewQueueItem]
    conflicts: list[ConflictView]
    sla_hours: int
    freshness: Freshness


class HistoryEntryView(BaseModel):
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


class DealStateView(BaseModel):
    deal_version: int
    deal: dict[str, Any]
    registration_version: int | None
    registration: dict[str, Any] | None


class DealHistoryResponse(BaseModel):
    deal_id: UUID
    as_of: datetime | None
    version: int | None
    state: DealStateView = Field(description="the deal and its registration at that point")
    entries: list[HistoryEntryView] = Field(description="events up to that point, in order")
    next_after: int | None = Field(description="pass as ?after= for the next page")
    freshness: Freshness


class ChainHead(BaseModel):
    stream: UUID
    version: int
    hash: str


class VerifyResponse(BaseModel):
    deal_id: UUID
    ok: bool
    streams: int
    events: int
    unsealed: int
    heads: list[ChainHead]
    tree_size: int = Field(description="events in the ledger tree (sealed events)")
    root: str | None = Field(description="the ledger tree's RFC 6962 root (hex)")
    anchored_to: str | None = Field(
        description="the signed checkpoint (from DEALLEDGER_CHECKPOINT_FILE) the store was "
        "held to; null when none is configured: then only the store's own consistency is "
        "shown (`dealledger verify` reads the checkpoint topic too)"
    )
    problems: list[str]
    freshness: Freshness
