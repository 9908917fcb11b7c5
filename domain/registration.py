"""Registration: a partner's claim to a customer opportunity, and its lifecycle.

submitted -> approved | in_review; in_review -> approved | rejected | action_required;
action_required -> (partner edits) in_review; approved -> extended (stays approved) |
expired | withdrawn | converted. rejected, expired and withdrawn are terminal.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import event

from domain.base import LedgerAggregate
from domain.errors import IllegalTransition, InvalidInput
from domain.normalise import conflict_key, normalise_product_line
from domain.values import Cause, Contact, Customer, LedgerEnum, Money


class RegistrationStatus(LedgerEnum):
    SUBMITTED = "submitted"
    IN_REVIEW = "in_review"
    ACTION_REQUIRED = "action_required"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"
    WITHDRAWN = "withdrawn"
    CONVERTED = "converted"


TERMINAL = frozenset(
    {RegistrationStatus.REJECTED, RegistrationStatus.EXPIRED, RegistrationStatus.WITHDRAWN}
)


class RejectionReason(LedgerEnum):
    DUPLICATE = "duplicate"
    EXISTING_CUSTOMER = "existing_customer"
    INSUFFICIENT_INFORMATION = "insufficient_information"
    NOT_QUALIFIED = "not_qualified"
    PARTNER_INELIGIBLE = "partner_ineligible"


class ReviewReason(LedgerEnum):
    """Why a submission was not auto-approved."""

    ABOVE_AUTO_APPROVAL_LIMIT = "above_auto_approval_limit"
    KEY_PROTECTED = "key_protected"
    KEY_CONTESTED = "key_contested"
    NEAR_DUPLICATE = "near_duplicate"
    DIRECT_DEAL_OPEN = "direct_deal_open"
    RESUBMITTED = "resubmitted"


def _related(related: Mapping[str, Iterable[UUID]]) -> dict[str, list[UUID]]:
    """Reasons with at least one registration, each list sorted and without repeats."""
    tidy = {str(reason): sorted(set(ids), key=str) for reason, ids in related.items()}
    return {reason: ids for reason, ids in sorted(tidy.items()) if ids}


def _value_must_be_positive(estimated_value: Money) -> None:
    """A registration worth nothing would still lock the customer for every other partner."""
    if estimated_value.amount <= 0:
        raise InvalidInput(
            "the estimated value must be more than zero", field="estimated_value.amount"
        )


class Registration(LedgerAggregate):
    # v2 state added `related_registrations` (and a withdrawn registration holds no
    # protected_until); v3 the `contact`. Older snapshots are upcast.
    class_version = 3
    personal_state = ("notes", "decision_note", "contact.*")

    @staticmethod
    def upcast_v1_v2(state: dict[str, Any]) -> None:
        state["related_registrations"] = {}
        if state.get("status") == RegistrationStatus.WITHDRAWN:
            state["protected_until"] = None

    @staticmethod
    def upcast_v2_v3(state: dict[str, Any]) -> None:
        state["contact"] = {}

    class Submitted(LedgerAggregate.Created):
        partner_code: str
        customer: Customer
        product_line: str
        estimated_value: Money
        expected_close: date
        notes: str
        personal_fields = ("notes",)

    class SentToReview(LedgerAggregate.Event):
        """v2 added `related`: review reason -> the registrations that caused it (the key's
        holder, its other claimants, near-duplicates); v1 events are upcast with none."""

        class_version = 2
        reasons: list[str]
        related: dict[str, list[UUID]]

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["related"] = {}

    class Approved(LedgerAggregate.Event):
        protected_until: datetime
        automatically: bool

    class Rejected(LedgerAggregate.Event):
        reason: RejectionReason
        note: str
        personal_fields = ("note",)

    class ActionRequested(LedgerAggregate.Event):
        note: str
        personal_fields = ("note",)

    class Resubmitted(LedgerAggregate.Event):
        """v2 added `related`, as on SentToReview; v1 events are upcast with none."""

        class_version = 2
        customer: Customer
        estimated_value: Money
        expected_close: date
        notes: str
        related: dict[str, list[UUID]]
        personal_fields = ("notes",)

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["related"] = {}

    class ContactRecorded(LedgerAggregate.Event):
        """The person at the customer, given at (re)submission when it changed."""

        name: str
        email: str
        phone: str
        personal_fields = ("name", "email", "phone")

    class Extended(LedgerAggregate.Event):
        protected_until: datetime

    class Withdrawn(LedgerAggregate.Event):
        note: str
        personal_fields = ("note",)

    class Expired(LedgerAggregate.Event):
        pass

    class Converted(LedgerAggregate.Event):
        deal_id: UUID

    def __init__(
        self,
        partner_code: str,
        customer: Customer,
        product_line: str,
        estimated_value: Money,
        expected_close: date,
        notes: str,
        cause: Cause,
    ) -> None:
        self.partner_code = partner_code
        self.customer = customer
        self.product_line = product_line
        self.conflict_key = conflict_key(customer.domain, product_line)
        self.estimated_value = estimated_value
        self.expected_close = expected_close
        self.notes = notes
        self.submitted_by = cause.actor
        self.status = RegistrationStatus.SUBMITTED
        self.review_reasons: list[str] = []
        # review reason -> the registrations behind it, as recorded at (re)submission
        self.related_registrations: dict[str, list[UUID]] = {}
        self.protected_until: datetime | None = None
        self.approved_automatically = False
        self.extensions = 0
        self.rejection_reason: RejectionReason | None = None
        self.decision_note = ""
        self.deal_id: UUID | None = None
        self.contact: dict[str, str] = {}  # name, email, phone once recorded

    @classmethod
    def submit(
        cls,
        registration_id: UUID,
        partner_code: str,
        customer: Customer,
        product_line: str,
        estimated_value: Money,
        expected_close: date,
        notes: str,
        cause: Cause,
        at: datetime,
        contact: Contact | None = None,
    ) -> Registration:
        _value_must_be_positive(estimated_value)
        if expected_close < at.date():
            raise InvalidInput("expected close date is in the past", field="expected_close")
        registration: Registration = cls._start(
            cls.Submitted,
            at,
            id=registration_id,
            partner_code=partner_code,
            customer=customer,
            product_line=normalise_product_line(product_line),
            estimated_value=estimated_value,
            expected_close=expected_close,
            notes=notes.strip(),
            cause=cause,
        )
        registration.record_contact(contact, cause, at)
        return registration

    def record_contact(self, contact: Contact | None, cause: Cause, at: datetime) -> None:
        """Records the contact when given and not the one recorded already."""
        if contact is None or contact.to_json() == self.contact:
            return
        self._record_contact(**contact.to_json(), cause=cause, timestamp=at)

    @event(ContactRecorded)
    def _record_contact(
        self, name: str, email: str, phone: str, cause: Cause, timestamp: datetime
    ) -> None:
        self.contact = {"name": name, "email": email, "phone": phone}

    @property
    def data_subject(self) -> str:
        return self.customer.domain

    # -- rules named as sentences ------------------------------------------

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL

    @property
    def holds_protection(self) -> bool:
        """Approved and converted registrations hold (or held) the key's protection."""
        return self.status in (RegistrationStatus.APPROVED, RegistrationStatus.CONVERTED)

    @property
    def is_awaiting_review(self) -> bool:
        return self.status is RegistrationStatus.IN_REVIEW

    def _must_be(self, *allowed: RegistrationStatus, doing: str) -> None:
        if self.status not in allowed:
            raise IllegalTransition(
                f"cannot {doing} a registration that is {self.status.value}",
                registration_id=str(self.id),
                status=self.status.value,
            )

    # -- transitions ---------------------------------------------------------

    def send_to_review(
        self,
        reasons: list[str],
        related: Mapping[str, Iterable[UUID]],
        cause: Cause,
        at: datetime,
    ) -> None:
        """`related`: for a reason, the registrations that caused it."""
        self._must_be(RegistrationStatus.SUBMITTED, doing="send to review")
        self._send_to_review(
            reasons=sorted(set(reasons)), related=_related(related), cause=cause, timestamp=at
        )

    @event(SentToReview)
    def _send_to_review(
        self,
        reasons: list[str],
        related: dict[str, list[UUID]],
        cause: Cause,
        timestamp: datetime,
    ) -> None:
        self.status = RegistrationStatus.IN_REVIEW
        self.review_reasons = list(reasons)
        self.related_registrations = _related(related)

    def approve(
        self, protected_until: datetime, automatically: bool, cause: Cause, at: datetime
    ) -> None:
        if automatically:
            self._must_be(RegistrationStatus.SUBMITTED, doing="auto-approve")
        else:
            self._must_be(RegistrationStatus.IN_REVIEW, doing="approve")
        if protected_until <= at:
            raise InvalidInput("protection must end in the future", field="protected_until")
        self._approve(
            protected_until=protected_until, automatically=automatically, cause=cause, timestamp=at
        )

    @event(Approved)
    def _approve(
        self, protected_until: datetime, automatically: bool, cause: Cause, timestamp: datetime
    ) -> None:
        self.status = RegistrationStatus.APPROVED
        self.protected_until = protected_until
        self.approved_automatically = automatically
        self.review_reasons = []
        self.related_registrations = {}

    def reject(self, reason: RejectionReason, note: str, cause: Cause, at: datetime) -> None:
        self._must_be(RegistrationStatus.IN_REVIEW, doing="reject")
        self._reject(reason=RejectionReason(reason), note=note.strip(), cause=cause, timestamp=at)

    @event(Rejected)
    def _reject(
        self, reason: RejectionReason, note: str, cause: Cause, timestamp: datetime
    ) -> None:
        self.status = RegistrationStatus.REJECTED
        self.rejection_reason = RejectionReason(reason)
        self.decision_note = note

    def request_action(self, note: str, cause: Cause, at: datetime) -> None:
        self._must_be(RegistrationStatus.IN_REVIEW, doing="request information on")
        if not note.strip():
            raise InvalidInput("say what information is needed", field="note")
        self._request_action(note=note.strip(), cause=cause, timestamp=at)

    @event(ActionRequested)
    def _request_action(self, note: str, cause: Cause, timestamp: datetime) -> None:
        self.status = RegistrationStatus.ACTION_REQUIRED
        self.decision_note = note

    def resubmit(
        self,
        customer: Customer,
        estimated_value: Money,
        expected_close: date,
        notes: str,
        related: Mapping[str, Iterable[UUID]],
        cause: Cause,
        at: datetime,
        contact: Contact | None = None,
    ) -> None:
        """`related`: the registrations this one conflicts with now, by review reason;
        a `contact` given replaces the one recorded."""
        self._must_be(RegistrationStatus.ACTION_REQUIRED, doing="resubmit")
        if conflict_key(customer.domain, self.product_line) != self.conflict_key:
            raise InvalidInput(
                "a resubmission cannot change the customer domain; withdraw and submit anew",
                field="customer.domain",
            )
        _value_must_be_positive(estimated_value)
        if expected_close < at.date():
            raise InvalidInput("expected close date is in the past", field="expected_close")
        self._resubmit(
            customer=customer,
            estimated_value=estimated_value,
            expected_close=expected_close,
            notes=notes.strip(),
            related=_related(related),
            cause=cause,
            timestamp=at,
        )
        self.record_contact(contact, cause, at)

    @event(Resubmitted)
    def _resubmit(
        self,
        customer: Customer,
        estimated_value: Money,
        expected_close: date,
        notes: str,
        related: dict[str, list[UUID]],
        cause: Cause,
        timestamp: datetime,
    ) -> None:
        self.customer = customer
        self.estimated_value = estimated_value
        self.expected_close = expected_close
        self.notes = notes
        self.status = RegistrationStatus.IN_REVIEW
        self.review_reasons = [ReviewReason.RESUBMITTED.value]
        self.related_registrations = _related(related)

    def extend(
        self, protected_until: datetime, max_extensions: int, cause: Cause, at: datetime
    ) -> None:
        self._must_be(RegistrationStatus.APPROVED, RegistrationStatus.CONVERTED, doing="extend")
        if self.extensions >= max_extensions:
            raise IllegalTransition(
                f"protection was already extended {self.extensions} time(s), the maximum",
                registration_id=str(self.id),
            )
        if self.protected_until is None or protected_until <= self.protected_until:
            raise InvalidInput("an extension must move expiry later", field="protected_until")
        if self.protected_until <= at:
            raise IllegalTransition("protection has already lapsed; it cannot be extended")
        self._extend(protected_until=protected_until, cause=cause, timestamp=at)

    @event(Extended)
    def _extend(self, protected_until: datetime, cause: Cause, timestamp: datetime) -> None:
        self.protected_until = protected_until
        self.extensions += 1

    def withdraw(self, note: str, cause: Cause, at: datetime) -> None:
        self._must_be(
            RegistrationStatus.IN_REVIEW,
            RegistrationStatus.ACTION_REQUIRED,
            RegistrationStatus.APPROVED,
            doing="withdraw",
        )
        self._withdraw(note=note.strip(), cause=cause, timestamp=at)

    @event(Withdrawn)
    def _withdraw(self, note: str, cause: Cause, timestamp: datetime) -> None:
        self.status = RegistrationStatus.WITHDRAWN
        self.decision_note = note
        self.protected_until = None  # withdrawing releases any protection held

    def expire(self, cause: Cause, at: datetime) -> None:
        self._must_be(RegistrationStatus.APPROVED, doing="expire")
        if self.protected_until is None or self.protected_until > at:
            raise IllegalTransition("protection has not lapsed yet")
        self._expire(cause=cause, timestamp=at)

    @event(Expired)
    def _expire(self, cause: Cause, timestamp: datetime) -> None:
        self.status = RegistrationStatus.EXPIRED

    def convert(self, deal_id: UUID, cause: Cause, at: datetime) -> None:
        self._must_be(RegistrationStatus.APPROVED, doing="convert")
        if self.protected_until is None or self.protected_until <= at:
            raise IllegalTransition("protection has lapsed; the registration cannot be converted")
        self._convert(deal_id=deal_id, cause=cause, timestamp=at)

    @event(Converted)
    def _convert(self, deal_id: UUID, cause: Cause, timestamp: datetime) -> None:
        self.status = RegistrationStatus.CONVERTED
        self.deal_id = deal_id
