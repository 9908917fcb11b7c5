"""Command models: imperative, frozen, validated at the edge before any handler runs.

Each carries `command_id` (the idempotency key), the `actor` who issues it and an
optional `correlation_id` tying it to a wider flow.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, ClassVar
from uuid import UUID

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from domain.deal import LossReason, PartnerRole, SupportKind
from domain.errors import DomainError
from domain.partner import PartnerTier
from domain.registration import RejectionReason
from domain.values import (
    Actor,
    ActorKind,
    Contact,
    Customer,
    Money,
    Role,
    email_problem,
    phone_problem,
)

_PLAIN_DECIMAL = re.compile(r"[0-9]+(\.[0-9]+)?")
_PLAIN_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _plain_decimal(value: Any) -> Any:
    """Decimal text as people write it, or a JSON number. Left to pydantic, text could
    also be fullwidth digits, `1_000`, padded or signed, which nobody means."""
    if isinstance(value, bool):
        raise ValueError("a number is expected, not true or false")
    if isinstance(value, str) and not _PLAIN_DECIMAL.fullmatch(value):
        raise ValueError(
            'write the number as plain decimal text such as "1250.50": ASCII digits with '
            "at most one decimal point; no sign, spaces, separators or exponent"
        )
    return value


def _plain_date(value: Any) -> Any:
    """A date is YYYY-MM-DD: pydantic alone would take a date-time or a Unix time."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str) and _PLAIN_DATE.fullmatch(value):
        return value
    raise ValueError("write the date as YYYY-MM-DD, such as 2027-03-31, without a time")


PlainDecimal = Annotated[
    Decimal,
    BeforeValidator(_plain_decimal),
    WithJsonSchema(
        {"anyOf": [{"type": "number"}, {"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?$"}]},
        mode="validation",
    ),
]
# 18 digits: read models keep money as 64-bit micro-units, exact to 10**12.
Amount = Annotated[PlainDecimal, Field(gt=0, max_digits=18, decimal_places=6, allow_inf_nan=False)]
Day = Annotated[
    date,
    BeforeValidator(_plain_date),
    WithJsonSchema(
        {"type": "string", "format": "date", "pattern": r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"},
        mode="validation",
    ),
]
Text = Annotated[str, Field(max_length=4000)]
ShortText = Annotated[str, Field(min_length=1, max_length=200)]
PartnerCode = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][\w.-]*$")]


def _domain_checked(factory: Any, *args: Any) -> Any:
    """Run a domain constructor, turning its refusal into a pydantic validation error."""
    try:
        return factory(*args)
    except DomainError as exc:
        raise ValueError(exc.message) from None


def nul_at(value: Any, where: str = "") -> str | None:
    """Where in a JSON-like `value` a NUL character is (``where.key[2]``), or None.

    PostgreSQL text cannot hold NUL, so it is refused on every channel."""
    if isinstance(value, str):
        return where if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            for part in (key, item):
                found = nul_at(part, f"{where}.{key}")
                if found is not None:
                    return found
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found = nul_at(item, f"{where}[{index}]")
            if found is not None:
                return found
    return None


class ActorIn(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: ActorKind
    id: Annotated[str, Field(min_length=1, max_length=200, pattern=r"\S")]
    role: Role

    @model_validator(mode="after")
    def _kind_matches_role(self) -> ActorIn:
        _domain_checked(Actor, self.kind, self.id, self.role)
        return self

    @classmethod
    def of(cls, actor: Actor) -> ActorIn:
        return cls(kind=actor.kind, id=actor.id, role=actor.role)

    def to_domain(self) -> Actor:
        actor: Actor = _domain_checked(Actor, self.kind, self.id, self.role)
        return actor


class MoneyIn(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    amount: Amount  # positive: every amount a command carries is a deal's or a value
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")]

    @field_validator("currency")
    @classmethod
    def _known_currency(cls, value: str) -> str:
        _domain_checked(Money, Decimal(0), value)
        return value

    def to_domain(self) -> Money:
        return Money(self.amount, self.currency)


class CustomerIn(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: ShortText
    domain: ShortText
    country: Annotated[str, Field(pattern=r"^[A-Z]{2}$")]

    @field_validator("domain")
    @classmethod
    def _valid_domain(cls, value: str) -> str:
        from domain.normalise import normalise_domain

        normalised: str = _domain_checked(normalise_domain, value)
        return normalised

    def to_domain(self) -> Customer:
        return Customer(self.name, self.domain, self.country)


class ContactIn(BaseModel):
    """The person at the customer: personal data, kept sealed (docs/privacy.md)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: Annotated[str, Field(max_length=200)] = ""
    email: Annotated[str, Field(max_length=254)] = ""
    phone: Annotated[str, Field(max_length=40)] = ""

    # Errors name the field and never repeat its value (personal data stays out of
    # problem bodies, logs and dead letters).
    @field_validator("email")
    @classmethod
    def _an_address(cls, email: str) -> str:
        problem = email_problem(email.strip().lower())
        if problem is not None:
            raise PydanticCustomError("contact_email", problem)
        return email

    @field_validator("phone")
    @classmethod
    def _a_number(cls, phone: str) -> str:
        problem = phone_problem(" ".join(phone.split()))
        if problem is not None:
            raise PydanticCustomError("contact_phone", problem)
        return phone

    @model_validator(mode="after")
    def _valid(self) -> ContactIn:
        self.to_domain()
        return self

    def to_domain(self) -> Contact:
        contact: Contact = _domain_checked(Contact, self.name, self.email, self.phone)
        return contact


class Command(BaseModel):
    """Base of every command."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    type_name: ClassVar[str] = "Command"

    command_id: Annotated[str, Field(min_length=1, max_length=200)]
    actor: ActorIn
    correlation_id: Annotated[str, Field(max_length=200)] | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.type_name = cls.__name__

    @model_validator(mode="before")
    @classmethod
    def _no_nul_characters(cls, data: Any) -> Any:
        """NUL cannot be stored in PostgreSQL text; refuse it here, on every channel."""
        if nul_at(data) is not None:
            raise ValueError("text must not contain NUL (\\x00) characters")
        return data

    #: Optional fields added after commands of this type were first recorded. Left out
    #: of the fingerprint while unset, so an older command re-sent still matches its record.
    added_later: ClassVar[frozenset[str]] = frozenset()

    def fingerprint_body(self) -> str:
        """What must match when a command id is re-sent: the command type and every
        field but the id itself."""
        unset = {name for name in self.added_later if getattr(self, name) is None}
        body = self.model_dump_json(exclude={"command_id", "correlation_id", *unset})
        return f"{self.type_name}:{body}"


# -- partners -----------------------------------------------------------------


class OnboardPartner(Command):
    partner_code: PartnerCode
    name: ShortText
    tier: PartnerTier = PartnerTier.REGISTERED
    regions: list[ShortText] = Field(default_factory=list, max_length=50)


class ChangePartnerTier(Command):
    partner_code: PartnerCode
    tier: PartnerTier


class SuspendPartner(Command):
    partner_code: PartnerCode
    reason: ShortText


class ReinstatePartner(Command):
    partner_code: PartnerCode


# -- registrations -------------------------------------------------------------


class SubmitRegistration(Command):
    partner_code: PartnerCode
    customer: CustomerIn
    product_line: ShortText
    estimated_value: MoneyIn
    expected_close: Day
    notes: Text = ""
    contact: ContactIn | None = None
    added_later: ClassVar[frozenset[str]] = frozenset({"contact"})


class ApproveRegistration(Command):
    registration_id: UUID
    note: Text = ""


class RejectRegistration(Command):
    registration_id: UUID
    reason: RejectionReason
    note: Text = ""


class RequestRegistrationInfo(Command):
    registration_id: UUID
    note: Annotated[str, Field(min_length=1, max_length=4000)]


class ResubmitRegistration(Command):
    registration_id: UUID
    customer: CustomerIn
    estimated_value: MoneyIn
    expected_close: Day
    notes: Text = ""
    contact: ContactIn | None = None
    added_later: ClassVar[frozenset[str]] = frozenset({"contact"})


class ExtendProtection(Command):
    registration_id: UUID
    days: Annotated[int, Field(ge=1, le=365)] | None = None


class WithdrawRegistration(Command):
    registration_id: UUID
    note: Text = ""


class ConvertRegistration(Command):
    registration_id: UUID
    title: ShortText
    owner: ShortText
    amount: MoneyIn | None = None
    # Default: the registration's date, while it has not passed.
    expected_close: Day | None = None
    added_later: ClassVar[frozenset[str]] = frozenset({"expected_close"})
    stage: ShortText | None = None
    region: Annotated[str, Field(max_length=64)] = ""
    pipeline: ShortText = "default"
    role: PartnerRole = PartnerRole.RESELLER


class ExpireProtections(Command):
    """The sweeper's command: expire every protection whose time has passed."""

    limit: Annotated[int, Field(ge=1, le=100_000)] = 1000


# -- deals -----------------------------------------------------------------


class OpenDeal(Command):
    title: ShortText
    customer: CustomerIn
    product_line: ShortText
    amount: MoneyIn
    expected_close: Day
    owner: ShortText
    region: Annotated[str, Field(max_length=64)] = ""
    pipeline: ShortText = "default"
    stage: ShortText | None = None


class MoveDealStage(Command):
    deal_id: UUID
    stage: ShortText
    reason: Text = ""


class ReviseDeal(Command):
    """Revise the amount, the expected close date or both, in one atomic command."""

    deal_id: UUID
    amount: MoneyIn | None = None
    expected_close: Day | None = None
    reason: Text = ""

    @model_validator(mode="after")
    def _something_to_revise(self) -> ReviseDeal:
        if self.amount is None and self.expected_close is None:
            raise ValueError("give `amount`, `expected_close` or both")
        return self


class ReviseDealAmount(Command):
    deal_id: UUID
    amount: MoneyIn
    reason: Text = ""


class ReviseDealCloseDate(Command):
    deal_id: UUID
    expected_close: Day
    reason: Text = ""


class AttachPartner(Command):
    deal_id: UUID
    partner_code: PartnerCode
    role: PartnerRole


class DetachPartner(Command):
    deal_id: UUID
    partner_code: PartnerCode


class SetAttribution(Command):
    deal_id: UUID
    shares: dict[PartnerCode, Annotated[PlainDecimal, Field(ge=0, le=100, allow_inf_nan=False)]]

    @field_validator("shares")
    @classmethod
    def _sum_to_one_hundred(cls, shares: dict[str, Decimal]) -> dict[str, Decimal]:
        if shares and sum(shares.values(), Decimal(0)) != 100:
            raise ValueError(f"shares must sum to exactly 100, not {sum(shares.values())}")
        return shares


class RequestSupport(Command):
    deal_id: UUID
    kind: SupportKind
    note: Text = ""


class AssignSupport(Command):
    deal_id: UUID
    request_id: ShortText
    assignee: ShortText


class ResolveSupport(Command):
    deal_id: UUID
    request_id: ShortText
    resolution: Text = ""


class AddDealNote(Command):
    deal_id: UUID
    text: Annotated[str, Field(min_length=1, max_length=4000)]


class MarkDealWon(Command):
    deal_id: UUID


class MarkDealLost(Command):
    deal_id: UUID
    reason: LossReason
    competitor: ShortText | None = None
    note: Text = ""


class ReopenDeal(Command):
    deal_id: UUID
    reason: Annotated[str, Field(min_length=1, max_length=4000)]
    stage: ShortText | None = None
    # Required once the deal's own date has passed.
    expected_close: Day | None = None
    added_later: ClassVar[frozenset[str]] = frozenset({"expected_close"})


# -- personal data ----------------------------------------------------------------


class EraseDataSubject(Command):
    """Destroy the keys of a data subject's personal data (a customer's domain, or an
    address at it): its notes and reasons read as `[erased]` from then on."""

    subject: ShortText


COMMAND_TYPES: dict[str, type[Command]] = {
    cls.__name__: cls
    for cls in (
        OnboardPartner,
        ChangePartnerTier,
        SuspendPartner,
        ReinstatePartner,
        SubmitRegistration,
        ApproveRegistration,
        RejectRegistration,
        RequestRegistrationInfo,
        ResubmitRegistration,
        ExtendProtection,
        WithdrawRegistration,
        ConvertRegistration,
        ExpireProtections,
        OpenDeal,
        MoveDealStage,
        ReviseDeal,
        ReviseDealAmount,
        ReviseDealCloseDate,
        AttachPartner,
        DetachPartner,
        SetAttribution,
        RequestSupport,
        AssignSupport,
        ResolveSupport,
        AddDealNote,
        MarkDealWon,
        MarkDealLost,
        ReopenDeal,
        EraseDataSubject,
    )
}
