"""Decoding an EventMessage's `data` into typed values, checked against the event schema.

Only the fields the read models use are decoded; unknown extra fields are ignored so
that additive event changes do not break the projectors. A missing field or a value of
the wrong shape raises `InvalidMessage`, before any read-model row is written.
Events are matched by name (``deal.opened``) whatever their version suffix; an event
whose newer version changed its shape fails here and is dead-lettered.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from domain.errors import DomainError
from domain.values import Customer, Money
from projections.contract.message import EventMessage, InvalidMessage
from projections.store import to_micros

Fields = dict[str, Any]
Parser = Callable[[Any], Any]

# Errors that mean "the message does not follow the schema", wherever they surface.
SCHEMA_ERRORS: tuple[type[BaseException], ...] = (
    KeyError,
    TypeError,
    ValueError,
    ArithmeticError,  # decimal.InvalidOperation and friends
    DomainError,  # a value object refusing its input
)


def text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value


def optional(parse: Parser) -> Parser:
    def parse_optional(value: Any) -> Any:
        return None if value is None else parse(value)

    return parse_optional


def boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"expected a boolean, got {type(value).__name__}")
    return value


def uuid(value: Any) -> UUID:
    return UUID(text(value))


def day(value: Any) -> date:
    return date.fromisoformat(text(value))


def instant(value: Any) -> datetime:
    moment = datetime.fromisoformat(text(value))
    if moment.utcoffset() is None:
        raise ValueError(f"time {value!r} has no UTC offset")
    return moment.astimezone(UTC)


def decimal(value: Any) -> Decimal:
    number = Decimal(text(value))
    if not number.is_finite():
        raise ValueError(f"{value!r} is not a finite number")
    return number


def _mapping(value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise TypeError(f"expected an object, got {type(value).__name__}")
    return value


def money(value: Any) -> Money:
    fields = _mapping(value)
    amount = Money(decimal(fields["amount"]), text(fields["currency"]))
    to_micros(amount.amount)  # representable in the read models
    return amount


def customer(value: Any) -> Customer:
    fields = _mapping(value)
    return Customer(text(fields["name"]), text(fields["domain"]), text(fields["country"]))


def text_list(value: Any) -> list[str]:
    if not isinstance(value, list):
        raise TypeError(f"expected a list, got {type(value).__name__}")
    return [text(item) for item in value]


def uuid_lists(value: Any) -> dict[str, list[UUID]]:
    def ids(items: Any) -> list[UUID]:
        if not isinstance(items, list):
            raise TypeError(f"expected a list, got {type(items).__name__}")
        return [uuid(item) for item in items]

    return {text(key): ids(items) for key, items in _mapping(value).items()}


@dataclass(frozen=True)
class AddedLater:
    """A field a later version of the event added: older messages lack it."""

    parse: Parser
    default: Callable[[], Any]


def decimal_map(value: Any) -> dict[str, Decimal]:
    return {text(key): decimal(item) for key, item in _mapping(value).items()}


def money_map(value: Any) -> dict[str, Money]:
    return {text(key): money(item) for key, item in _mapping(value).items()}


_DEAL_OPENED: dict[str, Parser | AddedLater] = {
    "title": text,
    "customer": customer,
    "product_line": text,
    "amount": money,
    "expected_close": day,
    "owner": text,
    "region": text,
    "pipeline": text,
    "stage": text,
    "registration_id": optional(uuid),
    "sourcing_partner": optional(text),
    "sourcing_role": optional(text),
}

# Event name -> the fields the read models use, with their parsers.
SCHEMAS: dict[str, dict[str, Parser | AddedLater]] = {
    "deal.opened": _DEAL_OPENED,
    "deal.stage_changed": {"from_stage": text, "to_stage": text},
    "deal.amount_revised": {"amount": money},
    "deal.close_date_revised": {"expected_close": day},
    "deal.partner_attached": {"partner_code": text, "role": text, "shares": decimal_map},
    "deal.partner_detached": {"partner_code": text, "shares": decimal_map},
    "deal.attribution_split_set": {"shares": decimal_map},
    "deal.won": {"attributed": money_map},
    "deal.lost": {"reason": text, "competitor": optional(text)},
    "deal.reopened": {"stage": text},
    "registration.submitted": {
        "partner_code": text,
        "customer": customer,
        "product_line": text,
        "estimated_value": money,
        "expected_close": day,
    },
    "registration.sent_to_review": {
        "reasons": text_list,
        "related": AddedLater(uuid_lists, dict),  # v2
    },
    "registration.approved": {"protected_until": instant, "automatically": boolean},
    "registration.rejected": {"reason": text},
    "registration.action_requested": {"note": text},
    "registration.resubmitted": {
        "customer": customer,
        "estimated_value": money,
        "expected_close": day,
        "related": AddedLater(uuid_lists, dict),  # v2
    },
    "registration.extended": {"protected_until": instant},
    "registration.withdrawn": {},
    "registration.expired": {},
    "registration.converted": {"deal_id": uuid},
    "channel_protection.opened": {"conflict_key": text},
    "channel_protection.granted": {
        "registration_id": uuid,
        "partner_code": text,
        "protected_until": instant,
    },
    "channel_protection.extended": {"protected_until": instant},
    "channel_protection.released": {"registration_id": uuid, "reason": text},
    "partner.onboarded": {"code": text, "name": text, "tier": text, "regions": text_list},
    "partner.tier_changed": {"tier": text},
    "partner.suspended": {"reason": text},
    "partner.reinstated": {},
}


def invalid(message: EventMessage, exc: BaseException) -> InvalidMessage:
    return InvalidMessage(
        f"{message.event_type} for {message.aggregate_id} v{message.aggregate_version} "
        f"does not follow the event schema: {exc!r}"
    )


def decode(message: EventMessage) -> Fields:
    """The decoded fields of `message` (empty for events without a schema here)."""
    schema = SCHEMAS.get(message.name)
    if schema is None:
        return {}
    try:
        data = _mapping(message.data)
        if message.occurred_at.utcoffset() is None:
            raise ValueError("occurred_at has no UTC offset")
        return {key: _field(data, key, parse) for key, parse in schema.items()}
    except SCHEMA_ERRORS as exc:
        raise invalid(message, exc) from None


def _field(data: Mapping[str, Any], key: str, parse: Parser | AddedLater) -> Any:
    if isinstance(parse, AddedLater):
        return parse.parse(data[key]) if key in data else parse.default()
    return parse(data[key])
