"""Aggregates built directly for the domain tests, and their replay."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

from domain.base import LedgerAggregate
from domain.deal import Deal, PartnerRole
from domain.registration import Registration
from domain.values import Customer, Money
from tests.support.actors import MANAGER, SALES, caused_by, partner

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
BY_SALES = caused_by(SALES)
BY_MANAGER = caused_by(MANAGER, "cmd-2")
BY_ACME = caused_by(partner("acme"), "cmd-3")
UMBRELLA = Customer("Umbrella", "umbrella.example", "GB")


def usd(amount: str | int) -> Money:
    return Money(Decimal(str(amount)), "USD")


def new_deal(
    amount: str = "1000",
    expected_close: date = date(2026, 6, 30),
    *,
    sourcing_partner: str | None = None,
    registration_id: UUID | None = None,
    stage: str | None = None,
) -> Deal:
    """A deal opened by sales: direct, or sourced by `sourcing_partner`."""
    return Deal.open(
        uuid4(),
        "Initech platform",
        Customer("Initech", "initech.example", "US"),
        "Platform",
        usd(amount),
        expected_close,
        "sam",
        "",
        "default",
        stage,
        registration_id or (uuid4() if sourcing_partner else None),
        sourcing_partner,
        PartnerRole.RESELLER if sourcing_partner else None,
        BY_SALES,
        NOW,
    )


def new_registration(
    amount: str = "1000", customer: Customer = UMBRELLA, partner_code: str = "acme"
) -> Registration:
    """A registration Acme has just submitted (status `submitted`)."""
    return Registration.submit(
        uuid4(), partner_code, customer, "Analytics", usd(amount),
        date(2026, 9, 30), "", BY_ACME, NOW,
    )  # fmt: skip


def pending_types(aggregate: LedgerAggregate) -> list[type]:
    """The classes of the events `aggregate` recorded since last collected (and collects them)."""
    return [type(e) for e in aggregate.collect_events()]


def replayed(events: Iterable[Any]) -> Any:
    """An aggregate rebuilt from its events alone."""
    aggregate: Any = None
    for event in events:
        aggregate = event.mutate(aggregate)
    return aggregate


def assert_replay_equals_live(aggregate: LedgerAggregate, earlier: Iterable[Any] = ()) -> None:
    """docs/architecture.md, invariant I4: replaying the aggregate's events (`earlier`
    ones already collected, then those still pending) yields the live object's state."""
    events = [*earlier, *aggregate.collect_events()]
    assert vars(replayed(events)) == vars(aggregate)
