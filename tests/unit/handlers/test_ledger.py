"""How the ledger executes any command: once per command id, atomically, with its
cause on every event; and the expiry sweep."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from commands.handlers import HANDLERS
from commands.ledger import DealLedger
from commands.models import (
    COMMAND_TYPES,
    ApproveRegistration,
    ExpireProtections,
    ReinstatePartner,
    SuspendPartner,
)
from domain.clock import ManualClock
from domain.registration import RegistrationStatus
from tests.support.actors import MANAGER, SALES, SYSTEM, partner
from tests.support.driver import Driver


def test_every_command_type_has_a_handler() -> None:
    handled = {cls.__name__ for cls in HANDLERS} | {ExpireProtections.__name__}
    assert handled == set(COMMAND_TYPES)


def test_a_resent_command_returns_its_first_outcome_and_writes_nothing(
    drive: Driver, ledger: DealLedger
) -> None:
    command = drive.submission("acme")
    first = ledger.execute(command)
    head = ledger.recorder.max_notification_id()

    again = ledger.execute(command.model_copy(update={"correlation_id": "retry"}))

    assert again.replayed
    assert not first.replayed
    assert (again.aggregate_id, again.result) == (first.aggregate_id, first.result)
    assert ledger.recorder.max_notification_id() == head == first.position


def test_a_command_id_reused_for_another_command_is_refused(drive: Driver) -> None:
    drive.run(SuspendPartner, MANAGER, command_id="once", partner_code="acme", reason="audit")

    reused = drive.attempt(
        drive.command(SuspendPartner, MANAGER, command_id="once", partner_code="globex", reason="x")
    )

    assert getattr(reused, "code", None) == "idempotency_key_reused"


def test_a_refused_command_writes_nothing_and_may_be_sent_again_once_allowed(
    drive: Driver, ledger: DealLedger
) -> None:
    drive.run(SuspendPartner, MANAGER, partner_code="globex", reason="audit")
    head = ledger.recorder.max_notification_id()
    submission = drive.submission("globex", "initech.example")

    assert getattr(drive.attempt(submission), "code", None) == "partner_suspended"
    assert ledger.recorder.max_notification_id() == head
    drive.run(ReinstatePartner, MANAGER, partner_code="globex")

    accepted = ledger.execute(submission)

    assert (accepted.replayed, accepted.result["status"]) == (False, "approved")


def test_every_event_records_the_actor_command_and_correlation_that_caused_it(
    drive: Driver, ledger: DealLedger
) -> None:
    start = ledger.recorder.max_notification_id() or 0
    command = drive.submission("acme").model_copy(update={"correlation_id": "portal-7"})
    ledger.execute(command)

    notifications = ledger.recorder.select_notifications(start=start + 1, limit=100)
    events: list[Any] = [ledger.mapper.to_domain_event(n) for n in notifications]
    assert len(events) > 3
    for event in events:
        assert event.cause.actor == partner("acme")
        assert (event.cause.command_id, event.cause.correlation_id) == (
            command.command_id,
            "portal-7",
        )


def test_the_sweep_expires_every_lapsed_protection_and_frees_its_key(
    drive: Driver, ledger: DealLedger, clock: ManualClock
) -> None:
    lapsing = drive.registered("acme", "umbrella.example")
    converted = drive.registered("globex", "initech.example")
    drive.convert(converted)
    clock.advance(timedelta(days=60))
    fresh = drive.registered("contoso", "hooli.example")
    clock.advance(timedelta(days=31))

    outcome = drive.run(ExpireProtections, SYSTEM)

    assert sorted(outcome.result["expired"]) == sorted([str(lapsing), str(converted)])
    assert ledger.get_registration(lapsing).status is RegistrationStatus.EXPIRED
    assert ledger.get_registration(converted).status is RegistrationStatus.CONVERTED
    assert ledger.get_registration(fresh).status is RegistrationStatus.APPROVED
    assert drive.run(ExpireProtections, SYSTEM).result == {"expired": []}
    assert drive.submit("globex", "umbrella.example").result["status"] == "approved"


def test_a_resent_sweep_returns_the_first_sweeps_outcome(
    drive: Driver, ledger: DealLedger, clock: ManualClock
) -> None:
    registration_id = drive.registered("acme")
    clock.advance(timedelta(days=91))
    sweep = drive.command(ExpireProtections, MANAGER)

    first = ledger.execute(sweep)
    again = ledger.execute(sweep)

    assert first.result == again.result == {"expired": [str(registration_id)]}
    assert again.replayed


def test_only_managers_and_the_system_sweep(drive: Driver) -> None:
    assert drive.refusal(ExpireProtections, SALES).code == "forbidden"


def test_approving_after_the_lapse_releases_the_old_holder_in_the_same_save(
    drive: Driver, ledger: DealLedger, clock: ManualClock
) -> None:
    holder = drive.registered("acme")
    rival = drive.registered("globex", amount="900000")
    clock.advance(timedelta(days=90))

    drive.run(ApproveRegistration, MANAGER, registration_id=rival)

    assert ledger.get_registration(holder).status is RegistrationStatus.EXPIRED
    assert ledger.get_registration(rival).status is RegistrationStatus.APPROVED
