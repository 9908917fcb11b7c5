"""Value objects shared by the aggregates: money, customers, actors, causes."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import Any

from domain.currencies import ISO_4217
from domain.errors import InvalidInput
from domain.normalise import normalise_domain

COUNTRY_CODE = re.compile(r"^[A-Z]{2}$")


def require_aware_utc(moment: datetime, what: str = "time") -> datetime:
    """Times in the ledger are timezone-aware and expressed in UTC."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise InvalidInput(f"{what} must be timezone-aware", field=what)
    return moment.astimezone(UTC)


@dataclass(frozen=True)
class Money:
    """An exact amount in one ISO 4217 currency; never converted implicitly."""

    amount: Decimal
    currency: str

    def __post_init__(self) -> None:
        if not isinstance(self.amount, Decimal):
            raise InvalidInput("money amounts must be Decimal", field="amount")
        if not self.amount.is_finite():
            raise InvalidInput("amount must be a finite number", field="amount")
        if self.amount < 0:
            raise InvalidInput("amount must not be negative", field="amount")
        if self.currency not in ISO_4217:
            raise InvalidInput(
                f"unknown currency {self.currency!r} (expected an ISO 4217 code)",
                field="currency",
            )

    @classmethod
    def of(cls, amount: str | int | Decimal, currency: str) -> Money:
        try:
            value = Decimal(str(amount))
        except InvalidOperation:
            raise InvalidInput(f"{amount!r} is not a number", field="amount") from None
        return cls(value, currency.upper())

    def __str__(self) -> str:
        return f"{self.amount:,} {self.currency}"

    def to_json(self) -> dict[str, str]:
        return {"amount": str(self.amount), "currency": self.currency}

    @classmethod
    def from_json(cls, data: dict[str, str]) -> Money:
        return cls(Decimal(data["amount"]), data["currency"])


@dataclass(frozen=True)
class Customer:
    """The end customer a deal is about; ``domain`` is stored normalised."""

    name: str
    domain: str
    country: str

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise InvalidInput("customer name must not be blank", field="customer.name")
        if not COUNTRY_CODE.match(self.country):
            raise InvalidInput(
                f"country {self.country!r} must be an ISO 3166 alpha-2 code such as 'DE'",
                field="customer.country",
            )
        object.__setattr__(self, "name", " ".join(self.name.split()))
        object.__setattr__(self, "domain", normalise_domain(self.domain))

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "domain": self.domain, "country": self.country}

    @classmethod
    def from_json(cls, data: dict[str, str]) -> Customer:
        return cls(data["name"], data["domain"], data["country"])


_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE = re.compile(r"^\+?[0-9 ()./-]{4,32}( ?(ext\.?|x) ?[0-9]{1,6})?$", re.IGNORECASE)


def email_problem(email: str) -> str | None:
    """Why `email` is no address, if it is not (never repeating it: it is personal)."""
    return None if not email or _EMAIL.match(email) else "not an email address"


def phone_problem(phone: str) -> str | None:
    """Why `phone` is no phone number, if it is not (never repeating it)."""
    if not phone or (_PHONE.match(phone) and sum(c.isdigit() for c in phone) >= 4):
        return None
    return "not a phone number (digits, spaces, + ( ) . / -, and an optional ext.)"


@dataclass(frozen=True)
class Contact:
    """The person at the customer a registration names: personal data, stored sealed
    (domain/privacy.py). Each part may be blank, not all of them."""

    name: str = ""
    email: str = ""
    phone: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", " ".join(self.name.split()))
        object.__setattr__(self, "email", self.email.strip().lower())
        object.__setattr__(self, "phone", " ".join(self.phone.split()))
        if not (self.name or self.email or self.phone):
            raise InvalidInput("a contact needs a name, an email or a phone", field="contact")
        for part, problem in (
            ("email", email_problem(self.email)),
            ("phone", phone_problem(self.phone)),
        ):
            if problem is not None:
                raise InvalidInput(f"contact.{part}: {problem}", field=f"contact.{part}")

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "email": self.email, "phone": self.phone}


class LedgerEnum(Enum):
    """Enums stored by value; plain `Enum` (not `str`) so the event store's JSON
    transcoder round-trips them as enums rather than decaying them to strings."""

    def __str__(self) -> str:
        return str(self.value)


class ActorKind(LedgerEnum):
    PARTNER = "partner"
    USER = "user"
    SYSTEM = "system"


class Role(LedgerEnum):
    PARTNER = "partner"
    CHANNEL_MANAGER = "channel_manager"
    SALES = "sales"
    AUDITOR = "auditor"
    ADMIN = "admin"
    SYSTEM = "system"


def actor_text(kind: str, actor_id: str, role: str) -> str:
    """How an actor is shown: `user:carol(channel_manager)`, `partner:acme`, `system:x`."""
    if kind == ActorKind.USER.value:
        return f"user:{actor_id}({role})"
    return f"{kind}:{actor_id}"


@dataclass(frozen=True)
class Actor:
    """Who issued a command: a partner (by partner code) or an internal user with a role."""

    kind: ActorKind
    id: str
    role: Role

    def __post_init__(self) -> None:
        if not self.id.strip():
            raise InvalidInput("actor id must not be blank", field="actor.id")
        if (self.kind is ActorKind.PARTNER) != (self.role is Role.PARTNER):
            raise InvalidInput("partners act with the partner role only", field="actor.role")

    @classmethod
    def partner(cls, partner_code: str) -> Actor:
        return cls(ActorKind.PARTNER, partner_code, Role.PARTNER)

    @classmethod
    def user(cls, user_id: str, role: Role) -> Actor:
        return cls(ActorKind.USER, user_id, role)

    @classmethod
    def system(cls, name: str = "dealledger") -> Actor:
        return cls(ActorKind.SYSTEM, name, Role.SYSTEM)

    def __str__(self) -> str:
        return actor_text(self.kind.value, self.id, self.role.value)

    def to_json(self) -> dict[str, str]:
        return {"kind": self.kind.value, "id": self.id, "role": self.role.value}

    @classmethod
    def from_json(cls, data: dict[str, str]) -> Actor:
        return cls(ActorKind(data["kind"]), data["id"], Role(data["role"]))


@dataclass(frozen=True)
class Cause:
    """Recorded on every event: who caused it, by which command, in which flow."""

    actor: Actor
    command_id: str
    correlation_id: str = field(default="")

    def __post_init__(self) -> None:
        if not self.command_id:
            raise InvalidInput("command_id must not be blank", field="command_id")
        if not self.correlation_id:
            object.__setattr__(self, "correlation_id", self.command_id)

    def to_json(self) -> dict[str, Any]:
        return {
            "actor": self.actor.to_json(),
            "command_id": self.command_id,
            "correlation_id": self.correlation_id,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Cause:
        return cls(Actor.from_json(data["actor"]), data["command_id"], data["correlation_id"])
