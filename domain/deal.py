"""Deal: the opportunity, opened directly by sales or converted from a registration."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from eventsourcing.domain import event

from domain.attribution import allocate, share_moves_to, shares_must_sum_to_one_hundred
from domain.base import LedgerAggregate
from domain.errors import (
    IllegalTransition,
    InvalidAttribution,
    InvalidInput,
    ProtectedPartnerRequired,
)
from domain.normalise import conflict_key, normalise_product_line
from domain.pipeline import LOST, WON, pipeline_named
from domain.values import Cause, Customer, LedgerEnum, Money


class DealStatus(LedgerEnum):
    OPEN = "open"
    WON = "won"
    LOST = "lost"


class PartnerRole(LedgerEnum):
    RESELLER = "reseller"
    DISTRIBUTOR = "distributor"
    REFERRAL = "referral"
    INFLUENCER = "influencer"
    SERVICES = "services"


class LossReason(LedgerEnum):
    PRICE = "price"
    COMPETITOR = "competitor"
    NO_DECISION = "no_decision"
    NO_BUDGET = "no_budget"
    PRODUCT_FIT = "product_fit"
    TIMING = "timing"
    OTHER = "other"


class SupportKind(LedgerEnum):
    PRESALES = "presales"
    TECHNICAL = "technical"
    PRICING = "pricing"
    MARKETING = "marketing"
    LEGAL = "legal"


def close_date_must_not_have_passed(expected_close: date, at: datetime) -> None:
    """An open deal's expected close date is never set before today (UTC)."""
    if expected_close < at.date():
        raise InvalidInput(
            f"expected_close {expected_close} is before today ({at.date()})",
            field="expected_close",
        )


def close_date_for_conversion(given: date | None, registered: date, at: datetime) -> date:
    """A converted deal takes the given date, else the registration's while it is ahead."""
    if given is not None:
        return given
    if registered < at.date():
        raise InvalidInput(
            f"the registration's expected close date {registered} has passed; "
            "give the deal a new expected_close",
            field="expected_close",
        )
    return registered


def _amount_must_be_positive(amount: Money) -> None:
    if amount.amount <= 0:
        raise InvalidInput("a deal's amount must be more than zero", field="amount.amount")


class Deal(LedgerAggregate):
    # v2 state keeps `note_count` instead of every note's text; v1 snapshots are upcast.
    class_version = 2
    personal_state = ("support.*.note", "support.*.resolution")

    @staticmethod
    def upcast_v1_v2(state: dict[str, Any]) -> None:
        state["note_count"] = len(state.pop("notes", None) or [])

    class Opened(LedgerAggregate.Created):
        title: str
        customer: Customer
        product_line: str
        amount: Money
        expected_close: date
        owner: str
        region: str
        pipeline: str
        stage: str
        registration_id: UUID | None
        sourcing_partner: str | None
        sourcing_role: PartnerRole | None

    class StageChanged(LedgerAggregate.Event):
        from_stage: str
        to_stage: str
        reason: str
        personal_fields = ("reason",)

    class AmountRevised(LedgerAggregate.Event):
        amount: Money
        reason: str
        personal_fields = ("reason",)

    class CloseDateRevised(LedgerAggregate.Event):
        expected_close: date
        reason: str
        personal_fields = ("reason",)

    class PartnerAttached(LedgerAggregate.Event):
        partner_code: str
        role: PartnerRole
        shares: dict[str, Decimal]

    class PartnerDetached(LedgerAggregate.Event):
        partner_code: str
        shares: dict[str, Decimal]

    class AttributionSplitSet(LedgerAggregate.Event):
        shares: dict[str, Decimal]

    class SupportRequested(LedgerAggregate.Event):
        request_id: str
        kind: SupportKind
        note: str
        personal_fields = ("note",)

    class SupportAssigned(LedgerAggregate.Event):
        request_id: str
        assignee: str

    class SupportResolved(LedgerAggregate.Event):
        request_id: str
        resolution: str
        personal_fields = ("resolution",)

    class NoteAdded(LedgerAggregate.Event):
        text: str
        personal_fields = ("text",)

    class Won(LedgerAggregate.Event):
        attributed: dict[str, Money]

    class Lost(LedgerAggregate.Event):
        reason: LossReason
        competitor: str | None
        note: str
        personal_fields = ("note",)

    class Reopened(LedgerAggregate.Event):
        stage: str
        reason: str
        personal_fields = ("reason",)

    def __init__(
        self,
        title: str,
        customer: Customer,
        product_line: str,
        amount: Money,
        expected_close: date,
        owner: str,
        region: str,
        pipeline: str,
        stage: str,
        registration_id: UUID | None,
        sourcing_partner: str | None,
        sourcing_role: PartnerRole | None,
        cause: Cause,
    ) -> None:
        self.title = title
        self.customer = customer
        self.product_line = product_line
        self.conflict_key = conflict_key(customer.domain, product_line)
        self.amount = amount
        self.expected_close = expected_close
        self.owner = owner
        self.region = region
        self.pipeline = pipeline
        self.stage = stage
        self.status = DealStatus.OPEN
        self.registration_id = registration_id
        self.sourcing_partner = sourcing_partner
        self.partners: dict[str, PartnerRole] = {}
        self.shares: dict[str, Decimal] = {}
        if sourcing_partner is not None:
            self.partners[sourcing_partner] = PartnerRole(sourcing_role or PartnerRole.RESELLER)
            self.shares[sourcing_partner] = Decimal(100)
        self.support: dict[str, dict[str, str]] = {}
        # Only the count: the texts live in the NoteAdded events (DealLedger.deal_notes),
        # so a deal's snapshot stays the same size however many notes it gathers.
        self.note_count = 0
        self.opened_at: datetime = self.created_on
        self.stage_entered_at: datetime = self.created_on
        self.closed_at: datetime | None = None
        self.loss_reason: LossReason | None = None
        self.competitor: str | None = None
        self.attributed: dict[str, Money] = {}

    @classmethod
    def open(
        cls,
        deal_id: UUID,
        title: str,
        customer: Customer,
        product_line: str,
        amount: Money,
        expected_close: date,
        owner: str,
        region: str,
        pipeline: str,
        stage: str | None,
        registration_id: UUID | None,
        sourcing_partner: str | None,
        sourcing_role: PartnerRole | None,
        cause: Cause,
        at: datetime,
    ) -> Deal:
        definition = pipeline_named(pipeline)
        stage_name = stage or definition.first.name
        definition.stage(stage_name)
        if not title.strip():
            raise InvalidInput("a deal needs a title", field="title")
        if not owner.strip():
            raise InvalidInput("a deal needs an owner", field="owner")
        _amount_must_be_positive(amount)
        close_date_must_not_have_passed(expected_close, at)
        deal: Deal = cls._start(
            cls.Opened,
            at,
            id=deal_id,
            title=title.strip(),
            customer=customer,
            product_line=normalise_product_line(product_line),
            amount=amount,
            expected_close=expected_close,
            owner=owner.strip(),
            region=region.strip() or customer.country,
            pipeline=definition.name,
            stage=stage_name,
            registration_id=registration_id,
            sourcing_partner=sourcing_partner,
            sourcing_role=PartnerRole(sourcing_role) if sourcing_role else None,
            cause=cause,
        )
        return deal

    @property
    def data_subject(self) -> str:
        return self.customer.domain

    # -- rules named as sentences ------------------------------------------

    @property
    def is_open(self) -> bool:
        return self.status is DealStatus.OPEN

    @property
    def probability(self) -> Decimal:
        return pipeline_named(self.pipeline).probability(self.stage)

    @property
    def weighted_amount(self) -> Money:
        return Money(self.amount.amount * self.probability / 100, self.amount.currency)

    def _must_be_open(self, doing: str) -> None:
        if not self.is_open:
            raise IllegalTransition(
                f"cannot {doing} a deal that is {self.status.value}", deal_id=str(self.id)
            )

    # -- transitions ---------------------------------------------------------

    def move_to_stage(self, stage: str, reason: str, cause: Cause, at: datetime) -> None:
        self._must_be_open("move")
        if stage in (WON, LOST):
            raise InvalidInput("close a deal as won or lost with its own command", field="stage")
        pipeline_named(self.pipeline).stage(stage)
        if stage == self.stage:
            raise IllegalTransition(f"the deal is already in {stage}")
        self._move(
            from_stage=self.stage, to_stage=stage, reason=reason.strip(), cause=cause, timestamp=at
        )

    @event(StageChanged)
    def _move(
        self, from_stage: str, to_stage: str, reason: str, cause: Cause, timestamp: datetime
    ) -> None:
        self.stage = to_stage
        self.stage_entered_at = timestamp

    def revise(
        self,
        amount: Money | None,
        expected_close: date | None,
        reason: str,
        cause: Cause,
        at: datetime,
    ) -> None:
        """Revise the amount, the close date or both: every part is checked before any
        is recorded, so a revision applies whole or not at all."""
        if amount is None and expected_close is None:
            raise InvalidInput("give an amount, an expected close date or both", field="amount")
        if amount is not None:
            self._amount_may_become(amount)
        if expected_close is not None:
            self._close_date_may_become(expected_close, at)
        if amount is not None:
            self._revise_amount(amount=amount, reason=reason.strip(), cause=cause, timestamp=at)
        if expected_close is not None:
            self._revise_close_date(
                expected_close=expected_close, reason=reason.strip(), cause=cause, timestamp=at
            )

    def revise_amount(self, amount: Money, reason: str, cause: Cause, at: datetime) -> None:
        self.revise(amount, None, reason, cause, at)

    def _amount_may_become(self, amount: Money) -> None:
        self._must_be_open("revise")
        if amount.currency != self.amount.currency:
            raise InvalidInput(
                f"the deal is in {self.amount.currency}; amounts are never converted",
                field="amount.currency",
            )
        _amount_must_be_positive(amount)
        if amount == self.amount:
            raise IllegalTransition("the amount is unchanged")

    @event(AmountRevised)
    def _revise_amount(self, amount: Money, reason: str, cause: Cause, timestamp: datetime) -> None:
        self.amount = amount

    def revise_close_date(
        self, expected_close: date, reason: str, cause: Cause, at: datetime
    ) -> None:
        self.revise(None, expected_close, reason, cause, at)

    def _close_date_may_become(self, expected_close: date, at: datetime) -> None:
        self._must_be_open("revise")
        if expected_close == self.expected_close:
            raise IllegalTransition("the close date is unchanged")
        close_date_must_not_have_passed(expected_close, at)

    @event(CloseDateRevised)
    def _revise_close_date(
        self, expected_close: date, reason: str, cause: Cause, timestamp: datetime
    ) -> None:
        self.expected_close = expected_close

    def attach_partner(
        self, partner_code: str, role: PartnerRole, cause: Cause, at: datetime
    ) -> None:
        self._must_be_open("attach a partner to")
        if partner_code in self.partners:
            raise IllegalTransition(f"partner {partner_code} is already attached")
        shares = dict(self.shares)
        # The first partner carries the whole deal; later ones join at 0% until a split is set.
        shares[partner_code] = Decimal(100) if not shares else Decimal(0)
        self._attach(
            partner_code=partner_code,
            role=PartnerRole(role),
            shares=shares,
            cause=cause,
            timestamp=at,
        )

    @event(PartnerAttached)
    def _attach(
        self,
        partner_code: str,
        role: PartnerRole,
        shares: dict[str, Decimal],
        cause: Cause,
        timestamp: datetime,
    ) -> None:
        self.partners[partner_code] = PartnerRole(role)
        self.shares = dict(shares)

    def detach_partner(
        self, partner_code: str, sourcing_is_protected: bool, cause: Cause, at: datetime
    ) -> None:
        self._must_be_open("detach a partner from")
        if partner_code not in self.partners:
            raise IllegalTransition(f"partner {partner_code} is not attached")
        if partner_code == self.sourcing_partner and sourcing_is_protected:
            raise ProtectedPartnerRequired(
                f"partner {partner_code} holds channel protection on this deal "
                "and cannot be removed",
                partner=partner_code,
            )
        shares = share_moves_to(self.shares, partner_code, self.sourcing_partner)
        self._detach(partner_code=partner_code, shares=shares, cause=cause, timestamp=at)

    @event(PartnerDetached)
    def _detach(
        self, partner_code: str, shares: dict[str, Decimal], cause: Cause, timestamp: datetime
    ) -> None:
        self.partners.pop(partner_code, None)
        self.shares = dict(shares)

    def set_attribution(self, shares: dict[str, Decimal], cause: Cause, at: datetime) -> None:
        self._must_be_open("set attribution on")
        if set(shares) != set(self.partners):
            raise InvalidAttribution(
                "shares must name exactly the attached partners: "
                + ", ".join(sorted(self.partners))
            )
        shares_must_sum_to_one_hundred(shares)
        self._set_attribution(shares=dict(shares), cause=cause, timestamp=at)

    @event(AttributionSplitSet)
    def _set_attribution(
        self, shares: dict[str, Decimal], cause: Cause, timestamp: datetime
    ) -> None:
        self.shares = dict(shares)

    def request_support(
        self, request_id: str, kind: SupportKind, note: str, cause: Cause, at: datetime
    ) -> None:
        self._must_be_open("request support on")
        if request_id in self.support:
            raise IllegalTransition(f"support request {request_id} already exists")
        self._request_support(
            request_id=request_id,
            kind=SupportKind(kind),
            note=note.strip(),
            cause=cause,
            timestamp=at,
        )

    @event(SupportRequested)
    def _request_support(
        self, request_id: str, kind: SupportKind, note: str, cause: Cause, timestamp: datetime
    ) -> None:
        self.support[request_id] = {
            "kind": str(kind),
            "note": note,
            "status": "open",
            "assignee": "",
        }

    def _support_request(self, request_id: str) -> dict[str, str]:
        try:
            return self.support[request_id]
        except KeyError:
            raise IllegalTransition(f"no support request {request_id} on this deal") from None

    def assign_support(self, request_id: str, assignee: str, cause: Cause, at: datetime) -> None:
        request = self._support_request(request_id)
        if request["status"] == "resolved":
            raise IllegalTransition(f"support request {request_id} is resolved")
        if not assignee.strip():
            raise InvalidInput("an assignee is needed", field="assignee")
        self._assign_support(
            request_id=request_id, assignee=assignee.strip(), cause=cause, timestamp=at
        )

    @event(SupportAssigned)
    def _assign_support(
        self, request_id: str, assignee: str, cause: Cause, timestamp: datetime
    ) -> None:
        self.support[request_id] = {
            **self.support[request_id],
            "assignee": assignee,
            "status": "assigned",
        }

    def resolve_support(self, request_id: str, resolution: str, cause: Cause, at: datetime) -> None:
        request = self._support_request(request_id)
        if request["status"] == "resolved":
            raise IllegalTransition(f"support request {request_id} is already resolved")
        self._resolve_support(
            request_id=request_id, resolution=resolution.strip(), cause=cause, timestamp=at
        )

    @event(SupportResolved)
    def _resolve_support(
        self, request_id: str, resolution: str, cause: Cause, timestamp: datetime
    ) -> None:
        self.support[request_id] = {
            **self.support[request_id],
            "status": "resolved",
            "resolution": resolution,
        }

    def add_note(self, text: str, cause: Cause, at: datetime) -> None:
        if not text.strip():
            raise InvalidInput("a note must not be blank", field="text")
        self._add_note(text=text.strip(), cause=cause, timestamp=at)

    @event(NoteAdded)
    def _add_note(self, text: str, cause: Cause, timestamp: datetime) -> None:
        self.note_count += 1

    def win(self, cause: Cause, at: datetime) -> None:
        self._must_be_open("win")
        self._win(attributed=allocate(self.amount, self.shares), cause=cause, timestamp=at)

    @event(Won)
    def _win(self, attributed: dict[str, Money], cause: Cause, timestamp: datetime) -> None:
        self.status = DealStatus.WON
        self.closed_at = timestamp
        self.attributed = dict(attributed)

    def lose(
        self, reason: LossReason, competitor: str | None, note: str, cause: Cause, at: datetime
    ) -> None:
        self._must_be_open("lose")
        self._lose(
            reason=LossReason(reason),
            competitor=(competitor or "").strip() or None,
            note=note.strip(),
            cause=cause,
            timestamp=at,
        )

    @event(Lost)
    def _lose(
        self,
        reason: LossReason,
        competitor: str | None,
        note: str,
        cause: Cause,
        timestamp: datetime,
    ) -> None:
        self.status = DealStatus.LOST
        self.closed_at = timestamp
        self.loss_reason = LossReason(reason)
        self.competitor = competitor

    def reopen(
        self,
        stage: str | None,
        reason: str,
        cause: Cause,
        at: datetime,
        expected_close: date | None = None,
    ) -> None:
        """Reopen a closed deal; it needs a new expected close date once its own has passed
        (a new date is recorded as a close-date revision after the reopening)."""
        if self.is_open:
            raise IllegalTransition("the deal is already open")
        stage_name = stage or self.stage
        pipeline_named(self.pipeline).stage(stage_name)
        if not reason.strip():
            raise InvalidInput("say why the deal is reopened", field="reason")
        if expected_close is not None:
            close_date_must_not_have_passed(expected_close, at)
        elif self.expected_close < at.date():
            raise InvalidInput(
                f"the deal's expected close date {self.expected_close} has passed; "
                "give a new expected_close to reopen it",
                field="expected_close",
            )
        self._reopen(stage=stage_name, reason=reason.strip(), cause=cause, timestamp=at)
        if expected_close is not None and expected_close != self.expected_close:
            self._revise_close_date(
                expected_close=expected_close, reason=reason.strip(), cause=cause, timestamp=at
            )

    @event(Reopened)
    def _reopen(self, stage: str, reason: str, cause: Cause, timestamp: datetime) -> None:
        self.status = DealStatus.OPEN
        self.stage = stage
        self.stage_entered_at = timestamp
        self.closed_at = None
        self.loss_reason = None
        self.competitor = None
        self.attributed = {}
