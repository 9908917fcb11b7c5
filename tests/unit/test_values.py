"""Value objects: money, customers, actors, causes and aware UTC times."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from domain.errors import InvalidInput
from domain.values import (
    Actor,
    ActorKind,
    Cause,
    Customer,
    Money,
    Role,
    require_aware_utc,
)

# -- Money --------------------------------------------------------------------


def test_money_holds_an_exact_decimal_in_a_known_currency() -> None:
    money = Money(Decimal("1234.50"), "EUR")
    assert money.amount == Decimal("1234.50")
    assert money.currency == "EUR"


def test_zero_is_a_valid_amount() -> None:
    assert Money(Decimal(0), "USD").amount == 0


def test_money_refuses_a_negative_amount() -> None:
    with pytest.raises(InvalidInput, match="negative") as caught:
        Money(Decimal("-0.01"), "EUR")
    assert caught.value.details["field"] == "amount"


@pytest.mark.parametrize("amount", ["NaN", "sNaN", "Infinity", "-Infinity"])
def test_money_refuses_non_finite_amounts(amount: str) -> None:
    with pytest.raises(InvalidInput, match="finite") as caught:
        Money(Decimal(amount), "EUR")
    assert caught.value.details["field"] == "amount"


@pytest.mark.parametrize("amount", [10, 10.5, "10.50", True])
def test_money_refuses_amounts_that_are_not_decimal(amount: Any) -> None:
    with pytest.raises(InvalidInput, match="Decimal"):
        Money(amount, "EUR")


@pytest.mark.parametrize("currency", ["XYZ", "eur", "EURO", "", "€"])
def test_money_refuses_an_unknown_currency(currency: str) -> None:
    with pytest.raises(InvalidInput, match="unknown currency") as caught:
        Money(Decimal(1), currency)
    assert caught.value.details["field"] == "currency"


def test_money_of_parses_text_and_upper_cases_the_currency() -> None:
    assert Money.of("99.95", "eur") == Money(Decimal("99.95"), "EUR")
    assert Money.of(12, "jpy") == Money(Decimal(12), "JPY")


def test_money_of_refuses_text_that_is_not_a_number() -> None:
    with pytest.raises(InvalidInput, match="not a number"):
        Money.of("twelve", "EUR")


def test_money_of_still_refuses_negative_amounts() -> None:
    with pytest.raises(InvalidInput):
        Money.of("-5", "EUR")


def test_money_round_trips_through_json_exactly() -> None:
    money = Money(Decimal("0.10"), "CHF")
    assert money.to_json() == {"amount": "0.10", "currency": "CHF"}
    assert Money.from_json(money.to_json()) == money


def test_money_is_immutable() -> None:
    money = Money(Decimal(1), "EUR")
    with pytest.raises(dataclasses.FrozenInstanceError):
        money.amount = Decimal(2)  # type: ignore[misc]


# -- Customer -----------------------------------------------------------------


def test_a_customer_domain_is_stored_normalised() -> None:
    customer = Customer("Acme", "https://WWW.Acme.com/contact", "DE")
    assert customer.domain == "acme.com"


def test_a_customer_name_has_its_whitespace_collapsed() -> None:
    assert Customer("  Acme \t  GmbH ", "acme.de", "DE").name == "Acme GmbH"


@pytest.mark.parametrize("country", ["de", "DEU", "D", "", "D1", "Germany"])
def test_a_customer_country_must_be_an_alpha_2_code(country: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        Customer("Acme", "acme.com", country)
    assert caught.value.details["field"] == "customer.country"


def test_a_customer_name_must_not_be_blank() -> None:
    with pytest.raises(InvalidInput) as caught:
        Customer("   ", "acme.com", "DE")
    assert caught.value.details["field"] == "customer.name"


def test_a_customer_domain_must_be_a_host_name() -> None:
    with pytest.raises(InvalidInput) as caught:
        Customer("Acme", "localhost", "DE")
    assert caught.value.details["field"] == "customer.domain"


def test_a_customer_round_trips_through_json() -> None:
    customer = Customer("Acme", "www.acme.com", "FR")
    assert Customer.from_json(customer.to_json()) == customer


# -- Actor --------------------------------------------------------------------


def test_a_partner_acts_with_the_partner_role() -> None:
    actor = Actor.partner("P-001")
    assert (actor.kind, actor.id, actor.role) == (ActorKind.PARTNER, "P-001", Role.PARTNER)
    assert str(actor) == "partner:P-001"


@pytest.mark.parametrize("role", [r for r in Role if r is not Role.PARTNER])
def test_a_partner_cannot_act_with_any_other_role(role: Role) -> None:
    with pytest.raises(InvalidInput) as caught:
        Actor(ActorKind.PARTNER, "P-001", role)
    assert caught.value.details["field"] == "actor.role"


@pytest.mark.parametrize("kind", [ActorKind.USER, ActorKind.SYSTEM])
def test_only_a_partner_may_hold_the_partner_role(kind: ActorKind) -> None:
    with pytest.raises(InvalidInput):
        Actor(kind, "carol", Role.PARTNER)


def test_a_user_acts_with_the_role_given() -> None:
    actor = Actor.user("carol", Role.CHANNEL_MANAGER)
    assert actor.kind is ActorKind.USER
    assert actor.role is Role.CHANNEL_MANAGER
    assert str(actor) == "user:carol(channel_manager)"


def test_the_system_actor_has_the_system_role() -> None:
    actor = Actor.system()
    assert (actor.kind, actor.role) == (ActorKind.SYSTEM, Role.SYSTEM)
    assert str(actor) == "system:dealledger"


@pytest.mark.parametrize("actor_id", ["", "   "])
def test_an_actor_id_must_not_be_blank(actor_id: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        Actor.user(actor_id, Role.SALES)
    assert caught.value.details["field"] == "actor.id"


def test_an_actor_round_trips_through_json() -> None:
    actor = Actor.user("dave", Role.AUDITOR)
    assert Actor.from_json(actor.to_json()) == actor


# -- Cause --------------------------------------------------------------------


def test_a_cause_defaults_its_correlation_id_to_its_command_id() -> None:
    cause = Cause(Actor.system(), "cmd-1")
    assert cause.correlation_id == "cmd-1"


def test_an_empty_correlation_id_also_falls_back_to_the_command_id() -> None:
    assert Cause(Actor.system(), "cmd-1", "").correlation_id == "cmd-1"


def test_an_explicit_correlation_id_is_kept() -> None:
    assert Cause(Actor.system(), "cmd-2", "flow-9").correlation_id == "flow-9"


def test_a_cause_needs_a_command_id() -> None:
    with pytest.raises(InvalidInput) as caught:
        Cause(Actor.system(), "")
    assert caught.value.details["field"] == "command_id"


def test_a_cause_round_trips_through_json() -> None:
    cause = Cause(Actor.partner("P-7"), "cmd-3", "flow-1")
    assert Cause.from_json(cause.to_json()) == cause


# -- require_aware_utc --------------------------------------------------------


def test_a_naive_datetime_is_refused() -> None:
    with pytest.raises(InvalidInput, match="timezone-aware") as caught:
        require_aware_utc(datetime(2025, 1, 1, 12, 0), "occurred_at")  # noqa: DTZ001
    assert caught.value.details["field"] == "occurred_at"


def test_an_aware_utc_datetime_is_returned_unchanged() -> None:
    moment = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
    assert require_aware_utc(moment) == moment
    assert require_aware_utc(moment).tzinfo is UTC


def test_an_aware_datetime_in_another_zone_is_expressed_in_utc_at_the_same_instant() -> None:
    berlin_winter = timezone(timedelta(hours=1))
    moment = datetime(2025, 1, 1, 13, 0, tzinfo=berlin_winter)
    converted = require_aware_utc(moment)
    assert converted == moment
    assert converted.utcoffset() == timedelta(0)
    assert converted.replace(tzinfo=None) == datetime(2025, 1, 1, 12, 0)  # noqa: DTZ001
