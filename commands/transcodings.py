"""How domain values are written to the event store, exactly and reversibly."""

from __future__ import annotations

from datetime import date
from enum import Enum
from typing import Any

from eventsourcing.persistence import JSONTranscoder, Transcoding

from domain.deal import DealStatus, LossReason, PartnerRole, SupportKind
from domain.partner import PartnerTier
from domain.protection import IndexKind, ReleaseReason
from domain.registration import RegistrationStatus, RejectionReason, ReviewReason
from domain.values import Actor, ActorKind, Cause, Customer, Money, Role


class DateAsISO(Transcoding):
    type = date
    name = "date_iso"

    def encode(self, obj: date) -> str:
        return obj.isoformat()

    def decode(self, data: str) -> date:
        return date.fromisoformat(data)


class MoneyAsDict(Transcoding):
    """Amount as a string, so no float ever touches money."""

    type = Money
    name = "money"

    def encode(self, obj: Money) -> dict[str, str]:
        return obj.to_json()

    def decode(self, data: dict[str, str]) -> Money:
        return Money.from_json(data)


class CustomerAsDict(Transcoding):
    type = Customer
    name = "customer"

    def encode(self, obj: Customer) -> dict[str, str]:
        return obj.to_json()

    def decode(self, data: dict[str, str]) -> Customer:
        return Customer.from_json(data)


class ActorAsDict(Transcoding):
    type = Actor
    name = "actor"

    def encode(self, obj: Actor) -> dict[str, str]:
        return obj.to_json()

    def decode(self, data: dict[str, str]) -> Actor:
        return Actor.from_json(data)


class CauseAsDict(Transcoding):
    type = Cause
    name = "cause"

    def encode(self, obj: Cause) -> dict[str, Any]:
        return obj.to_json()

    def decode(self, data: dict[str, Any]) -> Cause:
        return Cause.from_json(data)


class EnumByValue(Transcoding):
    """One transcoding per enum class, named after it, storing the value."""

    def __init__(self, enum_type: type[Enum]) -> None:
        self.type = enum_type
        self.name = f"enum:{enum_type.__name__}"
        self._enum_type = enum_type

    def encode(self, obj: Enum) -> Any:
        return obj.value

    def decode(self, data: Any) -> Enum:
        return self._enum_type(data)


STORED_ENUMS: tuple[type[Enum], ...] = (
    ActorKind,
    Role,
    PartnerTier,
    RegistrationStatus,
    RejectionReason,
    ReviewReason,
    ReleaseReason,
    IndexKind,
    DealStatus,
    PartnerRole,
    LossReason,
    SupportKind,
)


def register_ledger_transcodings(transcoder: JSONTranscoder) -> None:
    for transcoding in (
        DateAsISO(),
        MoneyAsDict(),
        CustomerAsDict(),
        ActorAsDict(),
        CauseAsDict(),
    ):
        transcoder.register(transcoding)
    for enum_type in STORED_ENUMS:
        transcoder.register(EnumByValue(enum_type))
