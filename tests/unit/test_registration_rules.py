"""Registration rules on the aggregate itself."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from uuid import uuid4

import pytest
from eventsourcing.domain import Snapshot

from domain.errors import InvalidInput
from domain.policy import related_registrations
from domain.protection import ChannelProtection, CustomerIndex, IndexKind
from domain.registration import Registration, RegistrationStatus
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
    registration.send_to_review(["above_auto_approval_limit"], {}, CAROL, NOW)
    registration.request_action("who buys?", CAROL, NOW)
    registration.collect_events()

    with pytest.raises(InvalidInput):
        registration.resubmit(
            UMBRELLA, Money(Decimal(0), "USD"), date(2026, 9, 30), "", {}, ACME, NOW
        )

    assert registration.collect_events() == []


def test_a_withdrawn_registration_no_longer_shows_protection() -> None:
    registration = _submit()
    registration.approve(NOW + timedelta(days=90), True, ACME, NOW)

    registration.withdraw("lost interest", ACME, NOW)

    assert registration.protected_until is None


def test_the_registrations_behind_each_review_reason_are_named() -> None:
    registration = _submit()
    holder, rival, near = uuid4(), uuid4(), uuid4()
    protection = ChannelProtection.open(registration.conflict_key, ACME, NOW)
    protection.grant(holder, "globex", NOW + timedelta(days=90), CAROL, NOW)
    protection.claim(rival, "contoso", CAROL, NOW)
    protection.claim(registration.id, "acme", ACME, NOW)
    index = CustomerIndex.open(IndexKind.COMPANY_NAME, "umbrella", "analytics", ACME, NOW)
    index.claim(holder, registration.conflict_key, CAROL, NOW)
    index.claim(near, "umbrella.test|analytics", CAROL, NOW)

    related = related_registrations(
        registration.id, registration.conflict_key, protection, [index], NOW
    )

    assert related == {
        "key_protected": [holder],
        "key_contested": [rival],
        "near_duplicate": [near],
    }
    later = NOW + timedelta(days=91)  # lapsed: no longer protected by anyone
    assert "key_protected" not in related_registrations(
        registration.id, registration.conflict_key, protection, [index], later
    )


def test_a_registration_sent_to_review_keeps_the_related_ids_until_approved() -> None:
    registration = _submit()
    rival = uuid4()

    registration.send_to_review(["key_contested"], {"key_contested": [rival, rival]}, CAROL, NOW)
    assert registration.related_registrations == {"key_contested": [rival]}
    registration.approve(NOW + timedelta(days=90), False, CAROL, NOW)
    assert registration.related_registrations == {}


def test_a_v1_snapshot_of_a_withdrawn_registration_is_upcast() -> None:
    registration = _submit()
    registration.approve(NOW + timedelta(days=90), True, ACME, NOW)
    v1 = vars(registration).copy()
    registration.withdraw("", ACME, NOW)
    # As a v1 snapshot held it: no related ids, and the old expiry kept on withdrawal.
    v1 |= {"status": RegistrationStatus.WITHDRAWN}
    del v1["related_registrations"]
    taken = Snapshot.take(registration)
    snapshot = Snapshot(
        originator_id=taken.originator_id,
        originator_version=taken.originator_version,
        timestamp=taken.timestamp,
        topic=taken.topic,
        state={k: v for k, v in v1.items() if k not in ("_id", "_version", "_pending_events")},
    )

    restored = snapshot.mutate(None)

    assert isinstance(restored, Registration)
    assert (restored.related_registrations, restored.protected_until) == ({}, None)
