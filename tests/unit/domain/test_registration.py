"""Registration, on the aggregate itself: its lifecycle, the events each step records,
the refusals, and replay equal to the live registration."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from typing import Any
from uuid import uuid4

import pytest
from eventsourcing.domain import Snapshot

from domain.errors import IllegalTransition, InvalidInput
from domain.registration import Registration, RegistrationStatus, RejectionReason
from domain.values import Customer, Money
from tests.support.actors import partner
from tests.unit.domain.builders import (
    BY_ACME,
    BY_MANAGER,
    NOW,
    UMBRELLA,
    assert_replay_equals_live,
    new_registration,
    pending_types,
    usd,
)

UNTIL = NOW + timedelta(days=90)
TWO_THOUSAND = usd(2000)
Status = RegistrationStatus


def _in_review() -> Registration:
    registration = new_registration()
    registration.send_to_review(["above_auto_approval_limit"], {}, BY_MANAGER, NOW)
    return registration


def _approved() -> Registration:
    registration = new_registration()
    registration.approve(UNTIL, True, BY_ACME, NOW)
    return registration


def _action_required() -> Registration:
    registration = _in_review()
    registration.request_action("who buys?", BY_MANAGER, NOW)
    return registration


def _resubmit(
    registration: Registration,
    customer: Customer = UMBRELLA,
    estimated_value: Money = TWO_THOUSAND,
    expected_close: date = date(2026, 10, 31),
) -> None:
    registration.resubmit(
        customer, estimated_value, expected_close, " CFO signs ", {}, BY_ACME, NOW
    )


# -- submission ------------------------------------------------------------------


def test_a_submission_records_the_claim_on_its_conflict_key() -> None:
    registration = new_registration()

    assert pending_types(registration) == [Registration.Submitted]
    assert registration.status is Status.SUBMITTED
    assert registration.conflict_key == "umbrella.example|analytics"
    assert registration.submitted_by == partner("acme")
    assert (registration.protected_until, registration.review_reasons) == (None, [])


def test_a_registration_worth_nothing_is_refused() -> None:
    with pytest.raises(InvalidInput) as caught:
        new_registration(amount="0")
    assert caught.value.details == {"field": "estimated_value.amount"}


def test_a_registration_expected_to_close_before_today_is_refused() -> None:
    with pytest.raises(InvalidInput) as caught:
        Registration.submit(
            uuid4(), "acme", UMBRELLA, "Analytics", usd(1), NOW.date() - timedelta(days=1),
            "", BY_ACME, NOW,
        )  # fmt: skip
    assert caught.value.details == {"field": "expected_close"}


# -- review and approval ---------------------------------------------------------


def test_a_submission_sent_to_review_keeps_its_reasons_sorted_and_related_ids_once() -> None:
    registration = new_registration()
    registration.collect_events()
    rival = uuid4()

    registration.send_to_review(
        ["near_duplicate", "key_contested", "near_duplicate"],
        {"key_contested": [rival, rival], "near_duplicate": []},
        BY_MANAGER,
        NOW,
    )

    assert pending_types(registration) == [Registration.SentToReview]
    assert registration.status is Status.IN_REVIEW
    assert registration.review_reasons == ["key_contested", "near_duplicate"]
    assert registration.related_registrations == {"key_contested": [rival]}


def test_an_automatic_approval_is_for_a_fresh_submission_only() -> None:
    registration = new_registration()
    registration.collect_events()

    registration.approve(UNTIL, True, BY_ACME, NOW)

    assert pending_types(registration) == [Registration.Approved]
    assert registration.status is Status.APPROVED
    assert (registration.protected_until, registration.approved_automatically) == (UNTIL, True)
    with pytest.raises(IllegalTransition):
        _in_review().approve(UNTIL, True, BY_ACME, NOW)


def test_a_manual_approval_is_for_a_registration_in_review_only() -> None:
    with pytest.raises(IllegalTransition):
        new_registration().approve(UNTIL, False, BY_MANAGER, NOW)
    registration = _in_review()

    registration.approve(UNTIL, False, BY_MANAGER, NOW)

    assert (registration.status, registration.approved_automatically) == (Status.APPROVED, False)
    assert (registration.review_reasons, registration.related_registrations) == ([], {})


def test_protection_must_end_in_the_future() -> None:
    with pytest.raises(InvalidInput):
        new_registration().approve(NOW, True, BY_ACME, NOW)


def test_a_rejection_keeps_its_reason_and_note() -> None:
    registration = _in_review()
    registration.collect_events()

    registration.reject(RejectionReason.DUPLICATE, " first came Globex ", BY_MANAGER, NOW)

    assert pending_types(registration) == [Registration.Rejected]
    assert registration.status is Status.REJECTED
    assert (registration.rejection_reason, registration.decision_note) == (
        RejectionReason.DUPLICATE,
        "first came Globex",
    )


def test_a_request_for_information_needs_a_note_and_a_registration_in_review() -> None:
    with pytest.raises(InvalidInput):
        _in_review().request_action("  ", BY_MANAGER, NOW)
    with pytest.raises(IllegalTransition):
        new_registration().request_action("who buys?", BY_MANAGER, NOW)
    registration = _in_review()
    registration.collect_events()

    registration.request_action("who buys?", BY_MANAGER, NOW)

    assert pending_types(registration) == [Registration.ActionRequested]
    assert (registration.status, registration.decision_note) == (
        Status.ACTION_REQUIRED,
        "who buys?",
    )


def test_a_resubmission_returns_to_review_with_the_new_details() -> None:
    registration = _action_required()
    registration.collect_events()

    _resubmit(registration, customer=Customer("Umbrella Group", "umbrella.example", "FR"))

    assert pending_types(registration) == [Registration.Resubmitted]
    assert registration.status is Status.IN_REVIEW
    assert registration.review_reasons == ["resubmitted"]
    assert (registration.customer.name, registration.estimated_value, registration.notes) == (
        "Umbrella Group",
        usd(2000),
        "CFO signs",
    )


@pytest.mark.parametrize(
    "change",
    [
        {"customer": Customer("Umbrella", "umbrella.test", "GB")},  # another conflict key
        {"estimated_value": usd(0)},
        {"expected_close": NOW.date() - timedelta(days=1)},
    ],
)
def test_a_resubmission_that_changes_the_key_or_is_worth_nothing_or_late_is_refused(
    change: dict[str, Any],
) -> None:
    registration = _action_required()
    registration.collect_events()

    with pytest.raises(InvalidInput):
        _resubmit(registration, **change)

    assert pending_types(registration) == []


def test_only_a_registration_asked_for_information_is_resubmitted() -> None:
    with pytest.raises(IllegalTransition):
        _resubmit(_in_review())


# -- protection lifecycle ---------------------------------------------------------


def test_an_extension_moves_expiry_later_a_bounded_number_of_times() -> None:
    registration = _approved()
    registration.collect_events()

    registration.extend(UNTIL + timedelta(days=30), 2, BY_MANAGER, NOW)
    registration.extend(UNTIL + timedelta(days=60), 2, BY_MANAGER, NOW)

    assert pending_types(registration) == [Registration.Extended, Registration.Extended]
    assert (registration.protected_until, registration.extensions) == (
        UNTIL + timedelta(days=60),
        2,
    )
    with pytest.raises(IllegalTransition, match="maximum"):
        registration.extend(UNTIL + timedelta(days=90), 2, BY_MANAGER, NOW)


def test_an_extension_must_move_expiry_later_and_come_before_the_lapse() -> None:
    with pytest.raises(InvalidInput):
        _approved().extend(UNTIL, 2, BY_MANAGER, NOW)
    with pytest.raises(IllegalTransition, match="lapsed"):
        _approved().extend(UNTIL + timedelta(days=30), 2, BY_MANAGER, UNTIL)
    with pytest.raises(IllegalTransition):
        _in_review().extend(UNTIL, 2, BY_MANAGER, NOW)


@pytest.mark.parametrize("make", [_in_review, _action_required, _approved])
def test_a_registration_in_play_may_be_withdrawn_and_then_shows_no_protection(
    make: Callable[[], Registration],
) -> None:
    registration = make()
    registration.collect_events()

    registration.withdraw(" lost interest ", BY_ACME, NOW)

    assert pending_types(registration) == [Registration.Withdrawn]
    assert registration.status is Status.WITHDRAWN
    assert (registration.protected_until, registration.decision_note) == (None, "lost interest")


def test_a_fresh_submission_is_not_withdrawn() -> None:
    with pytest.raises(IllegalTransition):
        new_registration().withdraw("", BY_ACME, NOW)


def test_an_approved_registration_expires_only_once_its_protection_has_lapsed() -> None:
    registration = _approved()
    with pytest.raises(IllegalTransition, match="not lapsed"):
        registration.expire(BY_MANAGER, UNTIL - timedelta(seconds=1))
    registration.collect_events()

    registration.expire(BY_MANAGER, UNTIL)

    assert pending_types(registration) == [Registration.Expired]
    assert registration.status is Status.EXPIRED
    assert registration.is_terminal


def test_an_approved_registration_converts_while_protected() -> None:
    registration = _approved()
    registration.collect_events()
    deal_id = uuid4()

    registration.convert(deal_id, BY_MANAGER, NOW)

    assert pending_types(registration) == [Registration.Converted]
    assert (registration.status, registration.deal_id) == (Status.CONVERTED, deal_id)
    assert registration.holds_protection


def test_a_registration_whose_protection_lapsed_is_not_converted() -> None:
    with pytest.raises(IllegalTransition, match="lapsed"):
        _approved().convert(uuid4(), BY_MANAGER, UNTIL)
    with pytest.raises(IllegalTransition):
        _in_review().convert(uuid4(), BY_MANAGER, NOW)


def _rejected() -> Registration:
    registration = _in_review()
    registration.reject(RejectionReason.NOT_QUALIFIED, "", BY_MANAGER, NOW)
    return registration


def _withdrawn() -> Registration:
    registration = _approved()
    registration.withdraw("", BY_ACME, NOW)
    return registration


def _expired() -> Registration:
    registration = _approved()
    registration.expire(BY_MANAGER, UNTIL)
    return registration


@pytest.mark.parametrize("make", [_rejected, _withdrawn, _expired])
def test_a_terminal_registration_refuses_every_step(make: Callable[[], Registration]) -> None:
    registration = make()
    assert registration.is_terminal
    registration.collect_events()
    later = UNTIL + timedelta(days=1)
    steps: list[Callable[[], object]] = [
        lambda: registration.send_to_review([], {}, BY_MANAGER, later),
        lambda: registration.approve(later + timedelta(days=90), False, BY_MANAGER, later),
        lambda: registration.reject(RejectionReason.DUPLICATE, "", BY_MANAGER, later),
        lambda: registration.request_action("?", BY_MANAGER, later),
        lambda: _resubmit(registration),
        lambda: registration.extend(later + timedelta(days=90), 2, BY_MANAGER, later),
        lambda: registration.withdraw("", BY_ACME, later),
        lambda: registration.expire(BY_MANAGER, later),
        lambda: registration.convert(uuid4(), BY_MANAGER, later),
    ]
    for step in steps:
        with pytest.raises(IllegalTransition):
            step()
    assert pending_types(registration) == []


# -- replay and upcasting ---------------------------------------------------------


def test_a_registration_replayed_from_its_events_equals_the_live_one() -> None:
    """docs/architecture.md, invariant I4, along the longest lifecycle."""
    registration = _action_required()
    _resubmit(registration)
    registration.approve(UNTIL, False, BY_MANAGER, NOW)
    registration.extend(UNTIL + timedelta(days=30), 2, BY_MANAGER, NOW)
    registration.convert(uuid4(), BY_MANAGER, NOW)

    assert_replay_equals_live(registration)


def test_a_v1_snapshot_of_a_withdrawn_registration_is_upcast() -> None:
    registration = _approved()
    v1 = vars(registration).copy()
    registration.withdraw("", BY_ACME, NOW)
    # As a v1 snapshot held it: no related ids, and the old expiry kept on withdrawal.
    v1 |= {"status": Status.WITHDRAWN}
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
