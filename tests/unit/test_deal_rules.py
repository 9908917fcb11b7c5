"""Deal rules on the aggregate itself: revisions apply whole; close dates are not set
before today; amounts are positive."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from uuid import uuid4

import pytest

from domain.deal import Deal, LossReason, close_date_for_conversion
from domain.errors import IllegalTransition, InvalidInput
from domain.values import Actor, Cause, Customer, Money, Role

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SAM = Cause(Actor.user("sam", Role.SALES), "cmd-1")
USD = "USD"


def _deal(amount: str = "1000", expected_close: date = date(2026, 6, 30)) -> Deal:
    return Deal.open(
        uuid4(),
        "Initech platform",
        Customer("Initech", "initech.example", "US"),
        "Platform",
        Money(Decimal(amount), USD),
        expected_close,
        "sam",
        "",
        "default",
        None,
        None,
        None,
        None,
        SAM,
        NOW,
    )


def _pending(deal: Deal) -> list[type]:
    return [type(e) for e in deal.collect_events()]


def test_a_revision_of_both_records_both_events() -> None:
    deal = _deal()
    deal.collect_events()

    deal.revise(Money(Decimal(2000), USD), date(2026, 9, 30), "scope grew", SAM, NOW)

    assert _pending(deal) == [Deal.AmountRevised, Deal.CloseDateRevised]
    assert (deal.amount, deal.expected_close) == (Money(Decimal(2000), USD), date(2026, 9, 30))


@pytest.mark.parametrize(
    ("amount", "expected_close", "error"),
    [
        (Money(Decimal(2000), USD), date(2026, 6, 30), IllegalTransition),  # close unchanged
        (Money(Decimal(1000), USD), date(2026, 9, 30), IllegalTransition),  # amount unchanged
        (Money(Decimal(2000), "EUR"), date(2026, 9, 30), InvalidInput),  # other currency
    ],
)
def test_a_revision_with_one_refused_part_records_nothing(
    amount: Money, expected_close: date, error: type[Exception]
) -> None:
    deal = _deal()
    deal.collect_events()

    with pytest.raises(error):
        deal.revise(amount, expected_close, "", SAM, NOW)

    assert _pending(deal) == []
    assert (deal.amount, deal.expected_close) == (Money(Decimal(1000), USD), date(2026, 6, 30))


def test_a_revision_of_nothing_is_invalid_input() -> None:
    with pytest.raises(InvalidInput):
        _deal().revise(None, None, "", SAM, NOW)


def test_a_deal_worth_nothing_is_not_opened() -> None:
    with pytest.raises(InvalidInput) as caught:
        _deal(amount="0")
    assert caught.value.details == {"field": "amount.amount"}


def test_a_deal_amount_is_not_revised_to_nothing() -> None:
    deal = _deal()
    deal.collect_events()

    with pytest.raises(InvalidInput):
        deal.revise_amount(Money(Decimal(0), USD), "", SAM, NOW)

    assert _pending(deal) == []


def test_a_deal_may_close_today_but_is_not_opened_with_a_date_before_today() -> None:
    assert _deal(expected_close=NOW.date()).expected_close == NOW.date()
    with pytest.raises(InvalidInput) as caught:
        _deal(expected_close=NOW.date() - timedelta(days=1))
    assert caught.value.details == {"field": "expected_close"}


def test_a_deal_is_not_revised_to_a_date_before_today() -> None:
    deal = _deal()
    deal.collect_events()

    with pytest.raises(InvalidInput):
        deal.revise(Money(Decimal(2000), USD), date(2019, 6, 30), "", SAM, NOW)

    assert _pending(deal) == []


def test_a_converted_deal_takes_the_given_date_else_the_registrations_while_ahead() -> None:
    ahead, passed, given = date(2026, 4, 1), date(2026, 3, 1), date(2026, 5, 1)

    assert close_date_for_conversion(None, ahead, NOW) == ahead
    assert close_date_for_conversion(given, passed, NOW) == given
    with pytest.raises(InvalidInput) as caught:
        close_date_for_conversion(None, passed, NOW)
    assert "2026-03-01 has passed" in caught.value.message
    assert caught.value.details == {"field": "expected_close"}


def test_reopening_a_deal_whose_date_passed_needs_a_new_date_recorded_as_a_revision() -> None:
    deal = _deal(expected_close=date(2026, 3, 10))
    deal.lose(LossReason.TIMING, None, "", SAM, NOW)
    later = NOW + timedelta(days=30)
    deal.collect_events()

    with pytest.raises(InvalidInput):
        deal.reopen(None, "budget found", SAM, later)
    with pytest.raises(InvalidInput):
        deal.reopen(None, "budget found", SAM, later, date(2026, 3, 31))
    deal.reopen(None, "budget found", SAM, later, date(2026, 6, 30))

    assert _pending(deal) == [Deal.Reopened, Deal.CloseDateRevised]
    assert (deal.is_open, deal.expected_close) == (True, date(2026, 6, 30))


def test_reopening_a_deal_whose_date_is_ahead_keeps_it() -> None:
    deal = _deal()
    deal.win(SAM, NOW)
    deal.collect_events()

    deal.reopen(None, "clawback", SAM, NOW)

    assert _pending(deal) == [Deal.Reopened]
    assert deal.expected_close == date(2026, 6, 30)
