"""Command models: frozen pydantic models validated at the edge."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import pytest
from pydantic import ValidationError

from commands.models import (
    COMMAND_TYPES,
    ActorIn,
    Command,
    CustomerIn,
    MarkDealWon,
    MoneyIn,
    OnboardPartner,
    ReopenDeal,
    SetAttribution,
    SubmitRegistration,
)
from domain.values import Actor, ActorKind, Customer, Money, Role

CAROL = ActorIn.of(Actor.user("carol", Role.CHANNEL_MANAGER))
PARTNER = ActorIn.of(Actor.partner("P-001"))


def _registration(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "command_id": "cmd-1",
        "actor": PARTNER.model_dump(),
        "partner_code": "P-001",
        "customer": {"name": "Acme GmbH", "domain": "acme.de", "country": "DE"},
        "product_line": "Cloud Security",
        "estimated_value": {"amount": "25000.00", "currency": "EUR"},
        "expected_close": "2025-09-30",
    }
    body.update(overrides)
    return body


def _attribution(shares: dict[str, Any]) -> dict[str, Any]:
    return {
        "command_id": "cmd-2",
        "actor": CAROL.model_dump(),
        "deal_id": str(uuid4()),
        "shares": shares,
    }


def _error_locations(error: ValidationError) -> list[tuple[int | str, ...]]:
    return [tuple(e["loc"]) for e in error.errors()]


# -- a valid command ----------------------------------------------------------


def test_a_valid_registration_is_parsed_into_typed_fields() -> None:
    command = SubmitRegistration.model_validate(_registration())
    assert command.estimated_value.amount == Decimal("25000.00")
    assert command.expected_close == date(2025, 9, 30)
    assert command.actor.to_domain() == Actor.partner("P-001")
    assert command.correlation_id is None
    assert command.type_name == "SubmitRegistration"


def test_a_valid_registration_converts_to_domain_values() -> None:
    command = SubmitRegistration.model_validate(_registration())
    assert command.customer.to_domain() == Customer("Acme GmbH", "acme.de", "DE")
    assert command.estimated_value.to_domain() == Money(Decimal("25000.00"), "EUR")


def test_the_customer_domain_is_normalised_during_validation() -> None:
    customer = CustomerIn(name="Acme", domain="https://WWW.Acme.com/", country="US")
    assert customer.domain == "acme.com"


def test_actor_in_round_trips_a_domain_actor() -> None:
    assert CAROL.to_domain() == Actor.user("carol", Role.CHANNEL_MANAGER)
    assert CAROL.kind is ActorKind.USER


def test_every_command_type_is_registered_under_its_class_name() -> None:
    assert all(cls.type_name == name for name, cls in COMMAND_TYPES.items())
    assert COMMAND_TYPES["SetAttribution"] is SetAttribution


# -- refusals -----------------------------------------------------------------


@pytest.mark.parametrize(
    "missing",
    ["command_id", "actor", "partner_code", "customer", "estimated_value", "expected_close"],
)
def test_a_missing_required_field_is_refused_by_name(missing: str) -> None:
    body = _registration()
    del body[missing]
    with pytest.raises(ValidationError) as caught:
        SubmitRegistration.model_validate(body)
    assert (missing,) in _error_locations(caught.value)
    assert missing in str(caught.value)


def test_a_missing_deal_id_is_refused() -> None:
    with pytest.raises(ValidationError) as caught:
        MarkDealWon.model_validate({"command_id": "c", "actor": CAROL.model_dump()})
    assert _error_locations(caught.value) == [("deal_id",)]


def test_a_negative_amount_is_refused() -> None:
    with pytest.raises(ValidationError) as caught:
        SubmitRegistration.model_validate(
            _registration(estimated_value={"amount": "-1.00", "currency": "EUR"})
        )
    assert _error_locations(caught.value) == [("estimated_value", "amount")]


@pytest.mark.parametrize("amount", ["NaN", "Infinity", "-Infinity", "1.1234567", "twelve"])
def test_a_non_finite_over_precise_or_non_numeric_amount_is_refused(amount: str) -> None:
    with pytest.raises(ValidationError) as caught:
        MoneyIn.model_validate({"amount": amount, "currency": "EUR"})
    assert _error_locations(caught.value) == [("amount",)]


@pytest.mark.parametrize(
    "amount",
    [
        "\uff11\uff10\uff10\uff10",
        "1_000",
        " 1 ",
        "1\n",
        "+5",
        "1e3",
        ".5",
        "5.",
        "1,000",
        True,
        "0",
        0,
    ],
)
def test_an_amount_that_is_not_plain_positive_decimal_text_or_a_number_is_refused(
    amount: object,
) -> None:
    with pytest.raises(ValidationError) as caught:
        MoneyIn.model_validate({"amount": amount, "currency": "EUR"})
    assert _error_locations(caught.value) == [("amount",)]


def test_a_json_number_that_underflowed_to_zero_is_refused() -> None:
    body = '{"amount": 1e-400, "currency": "EUR"}'
    with pytest.raises(ValidationError):
        MoneyIn.model_validate_json(body)
    with pytest.raises(ValidationError):
        MoneyIn.model_validate(json.loads(body))


@pytest.mark.parametrize(
    ("amount", "exact"),
    [("1250.50", "1250.50"), (1250, "1250"), (0.25, "0.25"), ("0.000001", "0.000001")],
)
def test_plain_decimal_text_and_json_numbers_are_accepted_exactly(
    amount: object, exact: str
) -> None:
    assert MoneyIn.model_validate({"amount": amount, "currency": "EUR"}).amount == Decimal(exact)


@pytest.mark.parametrize(
    "when",
    ["2025-09-30T00:00:00", "2025-09-30T00:00:00Z", "2025-09-30 ", "20250930", "2025-9-30",
     1759190400, datetime(2025, 9, 30, tzinfo=UTC)],
)  # fmt: skip
def test_an_expected_close_that_is_not_a_plain_date_is_refused(when: object) -> None:
    with pytest.raises(ValidationError) as caught:
        SubmitRegistration.model_validate(_registration(expected_close=when))
    assert _error_locations(caught.value) == [("expected_close",)]


def test_an_attribution_share_must_be_plain_decimal_text_too() -> None:
    with pytest.raises(ValidationError):
        SetAttribution.model_validate(_attribution({"a": "+50", "b": "50"}))


def test_an_unknown_currency_is_refused_with_the_domain_reason() -> None:
    with pytest.raises(ValidationError) as caught:
        SubmitRegistration.model_validate(
            _registration(estimated_value={"amount": "10", "currency": "XYZ"})
        )
    assert _error_locations(caught.value) == [("estimated_value", "currency")]
    assert "unknown currency 'XYZ'" in str(caught.value)


@pytest.mark.parametrize("currency", ["eur", "EURO", "E1R", ""])
def test_a_currency_that_is_not_three_capital_letters_is_refused(currency: str) -> None:
    with pytest.raises(ValidationError) as caught:
        MoneyIn.model_validate({"amount": "1", "currency": currency})
    assert _error_locations(caught.value) == [("currency",)]


@pytest.mark.parametrize("domain", ["localhost", "acme", "http://", "a..b.com", "1.2.3.4", ""])
def test_a_malformed_customer_domain_is_refused(domain: str) -> None:
    body = _registration(customer={"name": "Acme", "domain": domain, "country": "DE"})
    with pytest.raises(ValidationError) as caught:
        SubmitRegistration.model_validate(body)
    assert _error_locations(caught.value) == [("customer", "domain")]


@pytest.mark.parametrize("country", ["de", "DEU", ""])
def test_a_customer_country_that_is_not_alpha_2_is_refused(country: str) -> None:
    with pytest.raises(ValidationError) as caught:
        CustomerIn.model_validate({"name": "Acme", "domain": "acme.de", "country": country})
    assert _error_locations(caught.value) == [("country",)]


def test_an_invalid_partner_code_is_refused() -> None:
    with pytest.raises(ValidationError) as caught:
        SubmitRegistration.model_validate(_registration(partner_code="-bad code"))
    assert _error_locations(caught.value) == [("partner_code",)]


def test_extra_fields_are_forbidden_on_commands() -> None:
    with pytest.raises(ValidationError) as caught:
        SubmitRegistration.model_validate(_registration(discount="50%"))
    assert _error_locations(caught.value) == [("discount",)]
    assert "Extra inputs are not permitted" in str(caught.value)


def test_extra_fields_are_forbidden_on_nested_values() -> None:
    body = _registration(estimated_value={"amount": "1", "currency": "EUR", "fx_rate": "1.1"})
    with pytest.raises(ValidationError) as caught:
        SubmitRegistration.model_validate(body)
    assert _error_locations(caught.value) == [("estimated_value", "fx_rate")]


@pytest.mark.parametrize("command_id", ["", "x" * 201])
def test_a_command_id_must_be_present_and_bounded(command_id: str) -> None:
    with pytest.raises(ValidationError) as caught:
        MarkDealWon(command_id=command_id, actor=CAROL, deal_id=uuid4())
    assert _error_locations(caught.value) == [("command_id",)]


def test_an_actor_whose_kind_and_role_disagree_is_refused_at_validation() -> None:
    with pytest.raises(ValidationError) as caught:
        MarkDealWon.model_validate(
            {
                "command_id": "c",
                "actor": {"kind": "partner", "id": "P-001", "role": "channel_manager"},
                "deal_id": str(uuid4()),
            }
        )
    assert ("actor",) in [loc[:1] for loc in _error_locations(caught.value)]


def test_an_unknown_actor_role_is_refused() -> None:
    with pytest.raises(ValidationError) as caught:
        ActorIn.model_validate({"kind": "user", "id": "carol", "role": "overlord"})
    assert _error_locations(caught.value) == [("role",)]


# -- SetAttribution -----------------------------------------------------------


def test_attribution_shares_summing_to_one_hundred_are_accepted() -> None:
    command = SetAttribution.model_validate(_attribution({"P-1": "33.33", "P-2": "66.67"}))
    assert command.shares == {"P-1": Decimal("33.33"), "P-2": Decimal("66.67")}
    assert isinstance(command.deal_id, UUID)


def test_attribution_shares_given_as_json_numbers_stay_exact() -> None:
    body = _attribution({"P-1": 33.33, "P-2": 66.67})
    command = SetAttribution.model_validate_json(
        SetAttribution.model_validate(body).model_dump_json()
    )
    assert sum(command.shares.values(), Decimal(0)) == 100


def test_clearing_the_attribution_with_no_shares_is_accepted() -> None:
    assert SetAttribution.model_validate(_attribution({})).shares == {}


@pytest.mark.parametrize(
    "shares",
    [{"P-1": "60", "P-2": "30"}, {"P-1": "99.99"}, {"P-1": "50", "P-2": "50.01"}],
)
def test_attribution_shares_not_summing_to_one_hundred_are_refused(
    shares: dict[str, str],
) -> None:
    with pytest.raises(ValidationError) as caught:
        SetAttribution.model_validate(_attribution(shares))
    assert _error_locations(caught.value) == [("shares",)]
    assert "sum to exactly 100" in str(caught.value)


def test_a_negative_share_is_refused_even_when_the_total_is_one_hundred() -> None:
    with pytest.raises(ValidationError) as caught:
        SetAttribution.model_validate(_attribution({"P-1": "110", "P-2": "-10"}))
    locations = _error_locations(caught.value)
    assert ("shares", "P-1") in locations
    assert ("shares", "P-2") in locations


def test_a_share_for_an_invalid_partner_code_is_refused() -> None:
    with pytest.raises(ValidationError) as caught:
        SetAttribution.model_validate(_attribution({"not a code": "100"}))
    assert _error_locations(caught.value)[0][0] == "shares"


# -- immutability -------------------------------------------------------------


def test_commands_are_frozen() -> None:
    command = MarkDealWon(command_id="c", actor=CAROL, deal_id=uuid4())
    with pytest.raises(ValidationError, match="frozen"):
        command.command_id = "other"  # type: ignore[misc]


def test_nested_values_are_frozen() -> None:
    money = MoneyIn(amount=Decimal(1), currency="EUR")
    with pytest.raises(ValidationError, match="frozen"):
        money.amount = Decimal(2)  # type: ignore[misc]
    with pytest.raises(ValidationError, match="frozen"):
        CAROL.role = Role.ADMIN  # type: ignore[misc]


def test_frozen_commands_are_hashable_and_compare_by_value() -> None:
    deal_id = uuid4()
    first = MarkDealWon(command_id="c", actor=CAROL, deal_id=deal_id)
    second = MarkDealWon(command_id="c", actor=CAROL, deal_id=deal_id)
    assert first == second
    assert hash(first) == hash(second)


# -- idempotency fingerprint -----------------------------------------------------


def test_the_fingerprint_ignores_the_command_and_correlation_ids() -> None:
    deal_id = uuid4()
    first = MarkDealWon(command_id="a", actor=CAROL, deal_id=deal_id)
    second = MarkDealWon(command_id="b", actor=CAROL, deal_id=deal_id, correlation_id="flow")
    assert first.fingerprint_body() == second.fingerprint_body()


def test_an_optional_field_added_later_stays_out_of_the_fingerprint_while_unset() -> None:
    fields = {"command_id": "c", "actor": CAROL.model_dump(), "deal_id": str(uuid4())}
    unset = ReopenDeal.model_validate({**fields, "reason": "back"})
    given = ReopenDeal.model_validate({**fields, "reason": "back", "expected_close": "2027-01-31"})

    assert "expected_close" not in unset.fingerprint_body()
    assert '"expected_close":"2027-01-31"' in given.fingerprint_body()


def test_the_fingerprint_changes_with_the_body() -> None:
    first = OnboardPartner(command_id="a", actor=CAROL, partner_code="P-1", name="One")
    second = OnboardPartner(command_id="a", actor=CAROL, partner_code="P-1", name="Two")
    assert first.fingerprint_body() != second.fingerprint_body()


def test_every_command_subclass_is_a_command() -> None:
    assert all(issubclass(cls, Command) for cls in COMMAND_TYPES.values())


def test_text_with_nul_characters_is_refused_on_every_channel() -> None:
    from uuid import uuid4

    from commands.models import AddDealNote

    with pytest.raises(ValidationError, match="NUL"):
        AddDealNote(
            command_id="c",
            actor=ActorIn.of(Actor.user("sam", Role.SALES)),
            deal_id=uuid4(),
            text="a\x00b",
        )


def test_a_command_id_reused_for_another_command_type_is_refused() -> None:
    from datetime import UTC, datetime

    from commands.ledger import DealLedger
    from commands.models import (
        ApproveRegistration,
        CustomerIn,
        MoneyIn,
        SubmitRegistration,
        WithdrawRegistration,
    )
    from domain.clock import ManualClock
    from domain.errors import IdempotencyKeyReused

    ledger = DealLedger(
        env={"PERSISTENCE_MODULE": "eventsourcing.popo"},
        clock=ManualClock(datetime(2026, 1, 1, tzinfo=UTC)),
    )
    manager = ActorIn.of(Actor.user("carol", Role.CHANNEL_MANAGER))
    ledger.execute(OnboardPartner(command_id="on", actor=manager, partner_code="p1", name="P1"))
    submitted = ledger.execute(
        SubmitRegistration(
            command_id="sub",
            actor=ActorIn.of(Actor.partner("p1")),
            partner_code="p1",
            customer=CustomerIn(name="Acme", domain="acme.com", country="DE"),
            product_line="cloud",
            estimated_value=MoneyIn(amount=Decimal("9999999"), currency="EUR"),  # review
            expected_close=date(2027, 1, 1),
        )
    )
    assert submitted.aggregate_id is not None
    # Same id, same fields, different command: must not replay the approval.
    ledger.execute(
        ApproveRegistration(
            command_id="same", actor=manager, registration_id=submitted.aggregate_id
        )
    )
    with pytest.raises(IdempotencyKeyReused):
        ledger.execute(
            WithdrawRegistration(
                command_id="same", actor=manager, registration_id=submitted.aggregate_id
            )
        )
