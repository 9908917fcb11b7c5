"""The auto-approval policy: why a submission goes to review, and whom it collides with."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from uuid import uuid4

import pytest

from domain.errors import PartnerNotInGoodStanding
from domain.partner import Partner, PartnerTier
from domain.policy import related_registrations, review_reasons
from domain.protection import ChannelProtection, CustomerIndex, IndexKind
from domain.registration import Registration, ReviewReason
from domain.values import Customer, Money
from tests.unit.domain.builders import BY_ACME, BY_MANAGER, NOW, new_registration

LIMITS = {"USD": Decimal(250000)}
UNTIL = NOW + timedelta(days=90)


def _acme() -> Partner:
    return Partner.onboard("acme", "Acme", PartnerTier.GOLD, [], BY_MANAGER, NOW)


def _protection(registration: Registration) -> ChannelProtection:
    return ChannelProtection.open(registration.conflict_key, BY_ACME, NOW)


def _name_index() -> CustomerIndex:
    return CustomerIndex.open(IndexKind.COMPANY_NAME, "umbrella", "analytics", BY_ACME, NOW)


def _reasons(
    registration: Registration,
    protection: ChannelProtection,
    indexes: list[CustomerIndex] | None = None,
    partner: Partner | None = None,
) -> list[ReviewReason]:
    return review_reasons(registration, partner or _acme(), protection, indexes or [], LIMITS, NOW)


def test_a_free_key_within_the_limit_is_approved_at_once() -> None:
    """docs/architecture.md, invariant I2: the first valid submission for a free key wins."""
    registration = new_registration(amount="250000")
    assert _reasons(registration, _protection(registration)) == []


@pytest.mark.parametrize(("amount", "currency"), [("250000.01", "USD"), ("1", "EUR")])
def test_a_value_above_the_limit_or_in_a_currency_without_one_goes_to_review(
    amount: str, currency: str
) -> None:
    registration = Registration.submit(
        uuid4(), "acme", Customer("Umbrella", "umbrella.example", "GB"), "Analytics",
        Money(Decimal(amount), currency),
        NOW.date(), "", BY_ACME, NOW,
    )  # fmt: skip
    assert _reasons(registration, _protection(registration)) == [
        ReviewReason.ABOVE_AUTO_APPROVAL_LIMIT
    ]


def test_a_protected_key_sends_a_later_submission_to_review() -> None:
    """docs/architecture.md, invariant I2: no later overlapping submission is approved."""
    registration = new_registration()
    protection = _protection(registration)
    protection.grant(uuid4(), "globex", UNTIL, BY_MANAGER, NOW)

    assert _reasons(registration, protection) == [ReviewReason.KEY_PROTECTED]


def test_a_lapsed_protection_no_longer_counts_as_protected() -> None:
    registration = new_registration()
    protection = _protection(registration)
    protection.grant(uuid4(), "globex", NOW, BY_MANAGER, NOW - timedelta(days=1))

    assert ReviewReason.KEY_PROTECTED not in _reasons(registration, protection)


def test_another_pending_claim_or_an_open_direct_deal_sends_it_to_review() -> None:
    registration = new_registration()
    protection = _protection(registration)
    protection.claim(registration.id, "acme", BY_ACME, NOW)  # its own claim does not count
    assert _reasons(registration, protection) == []

    protection.claim(uuid4(), "globex", BY_ACME, NOW)
    protection.record_direct_deal(uuid4(), BY_MANAGER, NOW)

    assert _reasons(registration, protection) == [
        ReviewReason.KEY_CONTESTED,
        ReviewReason.DIRECT_DEAL_OPEN,
    ]


def test_a_live_claim_on_another_key_under_the_same_name_is_a_near_duplicate() -> None:
    registration = new_registration()
    index = _name_index()
    index.claim(uuid4(), registration.conflict_key, BY_ACME, NOW)
    assert _reasons(registration, _protection(registration), [index]) == []

    index.claim(uuid4(), "umbrella.test|analytics", BY_ACME, NOW)

    assert _reasons(registration, _protection(registration), [index]) == [
        ReviewReason.NEAR_DUPLICATE
    ]


def test_a_suspended_partner_is_refused_before_any_reason_is_weighed() -> None:
    partner = _acme()
    partner.suspend("audit", BY_MANAGER, NOW)
    registration = new_registration()

    with pytest.raises(PartnerNotInGoodStanding):
        _reasons(registration, _protection(registration), partner=partner)


def test_the_registrations_behind_each_review_reason_are_named() -> None:
    registration = new_registration()
    holder, rival, near = uuid4(), uuid4(), uuid4()
    protection = _protection(registration)
    protection.grant(holder, "globex", UNTIL, BY_MANAGER, NOW)
    protection.claim(rival, "contoso", BY_MANAGER, NOW)
    protection.claim(registration.id, "acme", BY_ACME, NOW)
    index = _name_index()
    index.claim(holder, registration.conflict_key, BY_MANAGER, NOW)
    index.claim(near, "umbrella.test|analytics", BY_MANAGER, NOW)

    related = related_registrations(
        registration.id, registration.conflict_key, protection, [index], NOW
    )

    assert related == {
        "key_protected": [holder],
        "key_contested": [rival],
        "near_duplicate": [near],
    }
    later = UNTIL + timedelta(days=1)  # lapsed: no longer protected by anyone
    assert "key_protected" not in related_registrations(
        registration.id, registration.conflict_key, protection, [index], later
    )
