"""Registration commands through the ledger: submission under the auto-approval
policy and first-to-register, review, resubmission, extension, withdrawal, conversion."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from uuid import UUID, uuid4

import pytest

from commands.ledger import DealLedger
from commands.models import (
    ApproveRegistration,
    Command,
    ConvertRegistration,
    ExtendProtection,
    RejectRegistration,
    RequestRegistrationInfo,
    ResubmitRegistration,
    SuspendPartner,
    WithdrawRegistration,
)
from domain.clock import ManualClock
from domain.deal import DealStatus, PartnerRole
from domain.ids import protection_id
from domain.registration import RegistrationStatus
from domain.values import Actor
from tests.support.actors import MANAGER, SALES, partner
from tests.support.driver import Driver, customer, money

ACME, GLOBEX = partner("acme"), partner("globex")
Status = RegistrationStatus


def _in_review(drive: Driver, partner_code: str = "acme", domain: str = "umbrella.example") -> UUID:
    """A submission above the auto-approval limit: it waits for a manager."""
    return drive.registered(partner_code, domain, amount="900000")


def _action_required(drive: Driver) -> UUID:
    registration_id = _in_review(drive)
    drive.run(RequestRegistrationInfo, MANAGER, registration_id=registration_id, note="who?")
    return registration_id


def _resubmission(registration_id: UUID, **change: object) -> dict[str, object]:
    return {
        "registration_id": registration_id,
        "customer": customer("umbrella.example", "Umbrella Group"),
        "estimated_value": money("2000"),
        "expected_close": date(2026, 12, 31),
        **change,
    }


# -- submission ------------------------------------------------------------------


def test_the_first_submission_for_a_free_key_is_approved_and_protects_it(
    drive: Driver, ledger: DealLedger, clock: ManualClock
) -> None:
    """docs/architecture.md, invariant I2: the earliest valid submission wins."""
    outcome = drive.submit("acme", "umbrella.example")

    until = clock.now() + timedelta(days=90)
    assert outcome.result == {
        "registration_id": str(outcome.aggregate_id),
        "status": "approved",
        "conflict_key": "umbrella.example|analytics",
        "protected_until": until.isoformat(),
        "review_reasons": [],
    }
    protection = ledger.get_protection(protection_id("umbrella.example|analytics"))
    assert (protection.holder, protection.protected_until) == (outcome.aggregate_id, until)


def test_a_later_submission_for_a_protected_key_goes_to_review_naming_the_holder(
    drive: Driver, ledger: DealLedger
) -> None:
    """docs/architecture.md, invariants I1 and I2: never approved over the protection."""
    first = drive.registered("acme", "umbrella.example")

    later = drive.submit("globex", "https://WWW.Umbrella.example/contact")

    assert later.result["status"] == "in_review"
    assert later.result["review_reasons"] == ["key_protected"]
    assert later.aggregate_id is not None
    registration = ledger.get_registration(later.aggregate_id)
    assert registration.related_registrations == {"key_protected": [first]}
    assert ledger.get_protection(protection_id(registration.conflict_key)).holder == first


@pytest.mark.parametrize(
    ("setup", "reason"),
    [
        (lambda d: _in_review(d, "globex"), "key_contested"),
        (lambda d: d.open_deal("umbrella.example"), "direct_deal_open"),
        (lambda d: d.registered("globex", "eu.umbrella.example"), "near_duplicate"),
    ],
)
def test_a_submission_on_a_contested_key_or_near_a_live_one_goes_to_review(
    drive: Driver, setup: Callable[[Driver], object], reason: str
) -> None:
    setup(drive)

    outcome = drive.submit("acme", "umbrella.example")

    assert (outcome.result["status"], outcome.result["review_reasons"]) == ("in_review", [reason])


@pytest.mark.parametrize(
    ("amount", "currency"), [("250000.01", "USD"), ("200000.01", "GBP"), ("10", "CHF")]
)
def test_a_value_above_the_limit_or_without_one_goes_to_review(
    drive: Driver, amount: str, currency: str
) -> None:
    outcome = drive.submit("acme", amount=amount, currency=currency)
    assert outcome.result["review_reasons"] == ["above_auto_approval_limit"]


def test_a_lapsed_protection_is_released_by_the_next_submission_even_unswept(
    drive: Driver, ledger: DealLedger, clock: ManualClock
) -> None:
    first = drive.registered("acme", "umbrella.example")
    clock.advance(timedelta(days=90))

    later = drive.submit("globex", "umbrella.example")

    assert later.result["status"] == "approved"
    assert ledger.get_registration(first).status is Status.EXPIRED


def test_a_partner_submits_only_for_itself_and_a_manager_for_any_partner(drive: Driver) -> None:
    command = drive.submission("acme", actor=GLOBEX)
    refusal = drive.attempt(command)
    assert getattr(refusal, "code", None) == "forbidden"
    assert drive.submit("acme", actor=MANAGER).result["status"] == "approved"
    assert getattr(drive.attempt(drive.submission("acme", actor=SALES)), "code", None) == (
        "forbidden"
    )


def test_a_suspended_or_unknown_partner_cannot_register(drive: Driver) -> None:
    drive.run(SuspendPartner, MANAGER, partner_code="acme", reason="audit")

    suspended = drive.attempt(drive.submission("acme"))
    unknown = drive.attempt(drive.submission("initech"))

    assert getattr(suspended, "code", None) == "partner_suspended"
    assert getattr(unknown, "code", None) == "not_found"


def test_a_submission_expected_to_close_before_today_is_invalid_input(
    drive: Driver, ledger: DealLedger
) -> None:
    head = ledger.recorder.max_notification_id()
    past = drive.submission("acme", expected_close=drive.now.date() - timedelta(days=1))

    assert getattr(drive.attempt(past), "code", None) == "invalid_input"
    assert ledger.recorder.max_notification_id() == head  # nothing was written


# -- review -----------------------------------------------------------------------


def test_a_manager_approves_a_registration_in_review(
    drive: Driver, ledger: DealLedger, clock: ManualClock
) -> None:
    registration_id = _in_review(drive)

    outcome = drive.approve(registration_id)

    assert outcome.result["status"] == "approved"
    registration = ledger.get_registration(registration_id)
    assert (registration.protected_until, registration.approved_automatically) == (
        clock.now() + timedelta(days=90),
        False,
    )
    protection = ledger.get_protection(protection_id(registration.conflict_key))
    assert (protection.holder, protection.pending) == (registration_id, {})


def test_a_registration_is_not_approved_over_another_partners_protection(
    drive: Driver, ledger: DealLedger
) -> None:
    """docs/architecture.md, invariants I1 and I2."""
    holder = drive.registered("acme", "umbrella.example")
    rival = drive.registered("globex", "umbrella.example")

    refusal = drive.refusal(ApproveRegistration, MANAGER, registration_id=rival)

    assert refusal.code == "channel_conflict"
    assert refusal.details["holder_registration_id"] == str(holder)
    assert ledger.get_registration(rival).status is Status.IN_REVIEW


def test_a_registration_not_in_review_is_not_approved_rejected_or_questioned(
    drive: Driver,
) -> None:
    approved = drive.registered("acme")
    steps: list[tuple[type[Command], dict[str, str]]] = [
        (ApproveRegistration, {}),
        (RejectRegistration, {"reason": "duplicate"}),
        (RequestRegistrationInfo, {"note": "who?"}),
    ]
    for command_type, fields in steps:
        refusal = drive.refusal(command_type, MANAGER, registration_id=approved, **fields)
        assert refusal.code == "illegal_transition", command_type


@pytest.mark.parametrize(
    ("command_type", "fields"),
    [
        (ApproveRegistration, {}),
        (RejectRegistration, {"reason": "duplicate"}),
        (RequestRegistrationInfo, {"note": "who?"}),
        (ExtendProtection, {}),
    ],
)
@pytest.mark.parametrize("actor", [SALES, ACME])
def test_only_managers_review_and_extend(
    drive: Driver, command_type: type[Command], fields: dict[str, str], actor: Actor
) -> None:
    registration_id = _in_review(drive)
    refusal = drive.refusal(command_type, actor, registration_id=registration_id, **fields)
    assert refusal.code == "forbidden"


def test_review_commands_name_a_registration_that_exists(drive: Driver) -> None:
    refusal = drive.refusal(ApproveRegistration, MANAGER, registration_id=uuid4())
    assert refusal.code == "not_found"


def test_a_rejection_drops_the_claim_so_the_key_is_free_again(
    drive: Driver, ledger: DealLedger
) -> None:
    rejected = _in_review(drive, "globex")

    outcome = drive.run(RejectRegistration, MANAGER, registration_id=rejected, reason="duplicate")

    assert outcome.result["status"] == "rejected"
    assert drive.submit("acme", "umbrella.example").result["status"] == "approved"


def test_a_partner_asked_for_information_resubmits_into_review(
    drive: Driver, ledger: DealLedger
) -> None:
    registration_id = _action_required(drive)
    assert ledger.get_registration(registration_id).status is Status.ACTION_REQUIRED

    outcome = drive.run(ResubmitRegistration, ACME, **_resubmission(registration_id))

    assert (outcome.result["status"], outcome.result["review_reasons"]) == (
        "in_review",
        ["resubmitted"],
    )
    assert ledger.get_registration(registration_id).customer.name == "Umbrella Group"


def test_a_resubmission_is_the_registering_partners_alone(drive: Driver) -> None:
    registration_id = _action_required(drive)
    refusal = drive.refusal(ResubmitRegistration, GLOBEX, **_resubmission(registration_id))
    assert refusal.code == "forbidden"


def test_a_resubmission_keeps_its_conflict_key_and_waits_for_a_question(drive: Driver) -> None:
    in_review = _in_review(drive, "acme", "initech.example")
    asked = _action_required(drive)

    moved = drive.refusal(
        ResubmitRegistration, ACME, **_resubmission(asked, customer=customer("umbrella.test"))
    )
    unasked = drive.refusal(ResubmitRegistration, ACME, **_resubmission(in_review))

    assert (moved.code, unasked.code) == ("invalid_input", "illegal_transition")


# -- protection lifecycle ---------------------------------------------------------


def test_protection_is_extended_by_the_policy_period_or_the_days_given_twice_at_most(
    drive: Driver, ledger: DealLedger, clock: ManualClock
) -> None:
    registration_id = drive.registered("acme")
    start = clock.now()

    drive.run(ExtendProtection, MANAGER, registration_id=registration_id)
    outcome = drive.run(ExtendProtection, MANAGER, registration_id=registration_id, days=10)

    until = start + timedelta(days=190)
    assert outcome.result["protected_until"] == until.isoformat()
    registration = ledger.get_registration(registration_id)
    assert ledger.get_protection(protection_id(registration.conflict_key)).protected_until == until
    third = drive.refusal(ExtendProtection, MANAGER, registration_id=registration_id)
    assert third.code == "illegal_transition"


def test_a_registration_without_protection_or_past_it_is_not_extended(
    drive: Driver, clock: ManualClock
) -> None:
    in_review = _in_review(drive, "globex", "initech.example")
    lapsed = drive.registered("acme")
    clock.advance(timedelta(days=91))

    for registration_id in (in_review, lapsed):
        refusal = drive.refusal(ExtendProtection, MANAGER, registration_id=registration_id)
        assert refusal.code == "illegal_transition"


def test_a_withdrawal_frees_the_key_for_the_next_partner(drive: Driver, ledger: DealLedger) -> None:
    registration_id = drive.registered("acme")

    outcome = drive.run(WithdrawRegistration, ACME, registration_id=registration_id, note="no")

    assert (outcome.result["status"], outcome.result["protected_until"]) == ("withdrawn", None)
    assert drive.submit("globex").result["status"] == "approved"


def test_a_withdrawal_is_the_registering_partners_and_only_while_in_play(drive: Driver) -> None:
    registration_id = drive.registered("acme")

    refusal = drive.refusal(WithdrawRegistration, GLOBEX, registration_id=registration_id)
    drive.run(WithdrawRegistration, MANAGER, registration_id=registration_id)
    again = drive.refusal(WithdrawRegistration, ACME, registration_id=registration_id)

    assert (refusal.code, again.code) == ("forbidden", "illegal_transition")


# -- conversion -------------------------------------------------------------------


def test_sales_converts_a_protected_registration_into_a_deal_sourced_by_its_partner(
    drive: Driver, ledger: DealLedger
) -> None:
    registration_id = drive.registered("acme", amount="1200")

    outcome = drive.run(
        ConvertRegistration, SALES, registration_id=registration_id, title="Umbrella",
        owner="sam", role="distributor",
    )  # fmt: skip

    assert outcome.result["status"] == "converted"
    assert outcome.aggregate_id is not None
    assert outcome.result["deal_id"] == str(outcome.aggregate_id)
    deal = ledger.get_deal(outcome.aggregate_id)
    assert (deal.status, deal.registration_id, deal.sourcing_partner) == (
        DealStatus.OPEN,
        registration_id,
        "acme",
    )
    assert (deal.partners, deal.amount) == (
        {"acme": PartnerRole.DISTRIBUTOR},
        money(1200).to_domain(),
    )
    assert ledger.get_registration(registration_id).deal_id == deal.id


def test_a_registration_in_review_or_past_its_protection_is_not_converted(
    drive: Driver, clock: ManualClock
) -> None:
    in_review = _in_review(drive, "globex", "initech.example")
    lapsed = drive.registered("acme")
    clock.advance(timedelta(days=90))

    for registration_id in (in_review, lapsed):
        refusal = drive.refusal(
            ConvertRegistration, SALES, registration_id=registration_id, title="T", owner="sam"
        )
        assert refusal.code == "illegal_transition"


def test_a_conversion_after_the_registered_close_date_needs_a_new_date(
    drive: Driver, clock: ManualClock
) -> None:
    registration_id = drive.registered("acme", expected_close=drive.close_date(days=10))
    clock.advance(timedelta(days=20))
    fields = {"registration_id": registration_id, "title": "T", "owner": "sam"}

    assert drive.refusal(ConvertRegistration, SALES, **fields).code == "invalid_input"
    drive.run(ConvertRegistration, SALES, expected_close=drive.close_date(), **fields)


def test_only_sellers_convert_registrations(drive: Driver) -> None:
    registration_id = drive.registered("acme")
    refusal = drive.refusal(
        ConvertRegistration, ACME, registration_id=registration_id, title="T", owner="sam"
    )
    assert refusal.code == "forbidden"
