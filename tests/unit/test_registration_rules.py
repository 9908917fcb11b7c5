"""Registration rules on the aggregate itself."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from uuid import uuid4

import pytest

from domain.errors import InvalidInput
from domain.registration import Registration
from domain.values import Actor, Cause, Customer, Money, Role

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
ACME = Cause(Actor.partner("acme"), "cmd-1")
CAROL = Cause(Actor.user("carol", Role.CHANNEL_MANAGER), "cmd-2")
UMBRELLA = Customer("Umbrella", "umbrella.example", "GB")


def _submit(amount: str = "1000") -> Registration:
    return Registration.submit(
        uuid4(), "acme", UMBRELLA, "Analytics", Money(Decimal(amount), "USD"),
        date(2026, 9, 30), "", ACME, NOW,
    )  # fmt: skip


def test_a_registration_worth_nothing_is_refused() -> None:
    with pytest.raises(InvalidInput) as caught:
        _submit(amount="0")
    assert caught.value.details == {"field": "estimated_value.amount"}


def test_a_resubmission_worth_nothing_is_refused() -> None:
    registration = _submit()
    registration.send_to_review(["above_auto_approval_limit"], CAROL, NOW)
    registration.request_action("who buys?", CAROL, NOW)
    registration.collect_events()

    with pytest.raises(InvalidInput):
        registration.resubmit(UMBRELLA, Money(Decimal(0), "USD"), date(2026, 9, 30), "", ACME, NOW)

    assert registration.collect_events() == []


def test_a_withdrawn_registration_no_longer_shows_protection() -> None:
    registration = _submit()
    registration.approve(NOW + timedelta(days=90), True, ACME, NOW)

    registration.withdraw("lost interest", ACME, NOW)

    assert registration.protected_until is None
