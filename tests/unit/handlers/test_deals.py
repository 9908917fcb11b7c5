"""Deal commands through the ledger: direct opening against channel protection,
stages, revisions, partners and attribution, support, notes, closing and reopening."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import pytest

from commands.ledger import DealLedger
from commands.models import (
    AddDealNote,
    AssignSupport,
    AttachPartner,
    Command,
    DetachPartner,
    MarkDealLost,
    MarkDealWon,
    MoveDealStage,
    OpenDeal,
    ReopenDeal,
    RequestSupport,
    ResolveSupport,
    ReviseDeal,
    ReviseDealAmount,
    ReviseDealCloseDate,
    SetAttribution,
    SuspendPartner,
)
from domain.clock import ManualClock
from domain.deal import DealStatus
from domain.ids import protection_id
from domain.registration import RegistrationStatus
from domain.values import Actor, Money
from tests.support.actors import AUDITOR, MANAGER, SALES, partner
from tests.support.driver import Driver, customer, money

ACME, GLOBEX = partner("acme"), partner("globex")
KEY = "umbrella.example|analytics"
D = Decimal


def _converted(drive: Driver, partner_code: str = "acme", **submission: Any) -> UUID:
    """A deal converted from `partner_code`'s protected registration of umbrella.example."""
    return drive.convert(drive.registered(partner_code, "umbrella.example", **submission))


def _co_sold(drive: Driver) -> UUID:
    """Acme's converted deal with Globex attached and a 70/30 split."""
    deal_id = _converted(drive)
    drive.run(AttachPartner, SALES, deal_id=deal_id, partner_code="globex", role="influencer")
    drive.run(SetAttribution, SALES, deal_id=deal_id, shares={"acme": "70", "globex": "30"})
    return deal_id


# -- opening directly -------------------------------------------------------------


def test_sales_opens_a_direct_deal_in_the_first_stage(drive: Driver, ledger: DealLedger) -> None:
    deal_id = drive.open_deal("initech.example", amount="5000", region="EMEA")

    deal = ledger.get_deal(deal_id)
    assert (deal.status, deal.stage, deal.region, deal.partners) == (
        DealStatus.OPEN,
        "lead",
        "EMEA",
        {},
    )
    protection = ledger.get_protection(protection_id(deal.conflict_key))
    assert protection.direct_deals == [str(deal_id)]


def test_a_direct_deal_on_a_protected_key_is_refused(drive: Driver, ledger: DealLedger) -> None:
    """docs/architecture.md, invariant I1: the protected partner keeps the customer."""
    holder = drive.registered("acme", "umbrella.example")
    head = ledger.recorder.max_notification_id()

    refusal = drive.refusal(
        OpenDeal, SALES, title="Direct", customer=customer("www.umbrella.example"),
        product_line="analytics", amount=money(10), expected_close=drive.close_date(),
        owner="sam",
    )  # fmt: skip

    assert refusal.code == "channel_conflict"
    assert refusal.details["holder_registration_id"] == str(holder)
    assert ledger.recorder.max_notification_id() == head


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"actor": ACME}, "forbidden"),
        ({"stage": "pitch"}, "invalid_input"),
        ({"pipeline": "enterprise"}, "invalid_input"),
        ({"expected_close_days": -1}, "invalid_input"),
    ],
)
def test_a_direct_deal_needs_a_seller_a_known_stage_and_a_date_ahead(
    drive: Driver, change: dict[str, Any], code: str
) -> None:
    actor = change.pop("actor", SALES)
    days = change.pop("expected_close_days", 30)
    refusal = drive.refusal(
        OpenDeal, actor, title="Direct", customer=customer("initech.example"),
        product_line="analytics", amount=money(10), expected_close=drive.close_date(days),
        owner="sam", **change,
    )  # fmt: skip
    assert refusal.code == code


# -- stages and revisions ----------------------------------------------------------


def test_a_seller_moves_a_deal_to_another_stage(drive: Driver, ledger: DealLedger) -> None:
    deal_id = drive.open_deal()

    outcome = drive.run(MoveDealStage, SALES, deal_id=deal_id, stage="proposal", reason="demo")

    assert outcome.result["stage"] == "proposal"
    assert ledger.get_deal(deal_id).stage == "proposal"
    again = drive.refusal(MoveDealStage, SALES, deal_id=deal_id, stage="proposal")
    unknown = drive.refusal(MoveDealStage, SALES, deal_id=deal_id, stage="pitch")
    assert (again.code, unknown.code) == ("illegal_transition", "invalid_input")


def test_deal_commands_name_a_deal_that_exists(drive: Driver) -> None:
    refusal = drive.refusal(MoveDealStage, SALES, deal_id=uuid4(), stage="proposal")
    assert refusal.code == "not_found"


def test_a_revision_of_amount_and_date_applies_whole(drive: Driver, ledger: DealLedger) -> None:
    deal_id = drive.open_deal(amount="5000")
    later = drive.close_date(days=365)

    drive.run(ReviseDeal, SALES, deal_id=deal_id, amount=money(7000), expected_close=later)
    refused = drive.refusal(
        ReviseDeal, SALES, deal_id=deal_id, amount=money(8000), expected_close=later
    )

    deal = ledger.get_deal(deal_id)
    assert refused.code == "illegal_transition"  # the date is unchanged: nothing applied
    assert (deal.amount, deal.expected_close) == (Money(D(7000), "USD"), later)


def test_amount_and_close_date_are_also_revised_alone(drive: Driver, ledger: DealLedger) -> None:
    deal_id = drive.open_deal(amount="5000")

    drive.run(ReviseDealAmount, SALES, deal_id=deal_id, amount=money("5000.50"))
    drive.run(ReviseDealCloseDate, SALES, deal_id=deal_id, expected_close=drive.close_date(400))

    deal = ledger.get_deal(deal_id)
    assert (deal.amount, deal.expected_close) == (Money(D("5000.50"), "USD"), drive.close_date(400))
    other_currency = drive.refusal(ReviseDealAmount, SALES, deal_id=deal_id, amount=money(1, "EUR"))
    assert other_currency.code == "invalid_input"


@pytest.mark.parametrize(
    ("command_type", "fields"),
    [
        (MoveDealStage, {"stage": "proposal"}),
        (ReviseDealAmount, {"amount": money(1)}),
        (AttachPartner, {"partner_code": "globex", "role": "services"}),
        (SetAttribution, {"shares": {}}),
        (MarkDealWon, {}),
        (MarkDealLost, {"reason": "price"}),
    ],
)
@pytest.mark.parametrize("actor", [ACME, AUDITOR])
def test_only_sellers_work_a_deal(
    drive: Driver, command_type: type[Command], fields: dict[str, Any], actor: Actor
) -> None:
    deal_id = _converted(drive)
    refusal = drive.refusal(command_type, actor, deal_id=deal_id, **fields)
    assert refusal.code == "forbidden"


# -- partners and attribution ------------------------------------------------------


def test_a_partner_is_attached_and_the_split_set_exactly(drive: Driver, ledger: DealLedger) -> None:
    """docs/architecture.md, invariant I3."""
    deal_id = _co_sold(drive)

    deal = ledger.get_deal(deal_id)
    assert deal.shares == {"acme": D(70), "globex": D(30)}
    wrong = drive.refusal(SetAttribution, SALES, deal_id=deal_id, shares={"acme": "100"})
    assert wrong.code == "invalid_attribution"


def test_a_suspended_unknown_or_already_attached_partner_is_not_attached(drive: Driver) -> None:
    deal_id = _converted(drive)
    drive.run(SuspendPartner, MANAGER, partner_code="contoso", reason="audit")

    codes = [
        drive.refusal(
            AttachPartner, SALES, deal_id=deal_id, partner_code=code, role="services"
        ).code
        for code in ("contoso", "initech", "acme")
    ]

    assert codes == ["partner_suspended", "not_found", "illegal_transition"]


def test_the_protected_sourcing_partner_cannot_be_detached(
    drive: Driver, ledger: DealLedger
) -> None:
    deal_id = _co_sold(drive)

    refusal = drive.refusal(DetachPartner, SALES, deal_id=deal_id, partner_code="acme")

    assert refusal.code == "protected_partner"
    assert set(ledger.get_deal(deal_id).partners) == {"acme", "globex"}


def test_the_sourcing_partner_may_be_detached_once_its_protection_has_lapsed(
    drive: Driver, ledger: DealLedger, clock: ManualClock
) -> None:
    deal_id = _co_sold(drive)
    clock.advance(timedelta(days=90))

    drive.run(DetachPartner, SALES, deal_id=deal_id, partner_code="acme")

    assert ledger.get_deal(deal_id).shares == {"globex": D(100)}


def test_an_influencing_partner_is_detached_and_its_share_returns_to_the_source(
    drive: Driver, ledger: DealLedger
) -> None:
    deal_id = _co_sold(drive)

    drive.run(DetachPartner, SALES, deal_id=deal_id, partner_code="globex")
    again = drive.refusal(DetachPartner, SALES, deal_id=deal_id, partner_code="globex")

    assert ledger.get_deal(deal_id).shares == {"acme": D(100)}
    assert again.code == "illegal_transition"


# -- support and notes -------------------------------------------------------------


def test_an_attached_partner_requests_support_that_sales_assigns_and_resolves(
    drive: Driver, ledger: DealLedger
) -> None:
    deal_id = _converted(drive)

    request_id = drive.run(RequestSupport, ACME, deal_id=deal_id, kind="presales").result[
        "request_id"
    ]
    drive.run(AssignSupport, SALES, deal_id=deal_id, request_id=request_id, assignee="ana")
    drive.run(ResolveSupport, SALES, deal_id=deal_id, request_id=request_id, resolution="ok")

    assert ledger.get_deal(deal_id).support[request_id]["status"] == "resolved"
    again = drive.refusal(ResolveSupport, SALES, deal_id=deal_id, request_id=request_id)
    unknown = drive.refusal(
        AssignSupport, SALES, deal_id=deal_id, request_id="nope", assignee="ana"
    )
    assert (again.code, unknown.code) == ("illegal_transition", "illegal_transition")


def test_a_partner_not_attached_to_the_deal_may_not_contribute(drive: Driver) -> None:
    deal_id = _converted(drive)

    asks = drive.refusal(RequestSupport, GLOBEX, deal_id=deal_id, kind="pricing")
    notes = drive.refusal(AddDealNote, GLOBEX, deal_id=deal_id, text="hello")
    assigns = drive.refusal(AssignSupport, ACME, deal_id=deal_id, request_id="r", assignee="x")

    assert (asks.code, notes.code, assigns.code) == ("forbidden", "forbidden", "forbidden")


def test_an_attached_partner_and_sales_add_notes_but_not_blank_ones(
    drive: Driver, ledger: DealLedger
) -> None:
    deal_id = _converted(drive)

    drive.run(AddDealNote, ACME, deal_id=deal_id, text="met the CTO")
    drive.run(AddDealNote, SALES, deal_id=deal_id, text="sent the quote")
    blank = drive.refusal(AddDealNote, SALES, deal_id=deal_id, text="   ")

    assert ledger.deal_notes(deal_id) == ["met the CTO", "sent the quote"]
    assert ledger.get_deal(deal_id).note_count == 2
    assert blank.code == "invalid_input"


# -- closing and reopening ---------------------------------------------------------


def test_a_won_deal_attributes_its_whole_amount_and_ends_the_protection(
    drive: Driver, ledger: DealLedger
) -> None:
    """docs/architecture.md, invariant I3; protection ends when the deal closes."""
    deal_id = _converted(drive, amount="1000.01")
    drive.run(AttachPartner, SALES, deal_id=deal_id, partner_code="globex", role="referral")
    drive.run(SetAttribution, SALES, deal_id=deal_id, shares={"acme": "50", "globex": "50"})

    outcome = drive.run(MarkDealWon, SALES, deal_id=deal_id)

    assert outcome.result["attributed"] == {
        "acme": {"amount": "500.01", "currency": "USD"},
        "globex": {"amount": "500.00", "currency": "USD"},
    }
    assert ledger.get_protection(protection_id(KEY)).holder is None
    assert drive.submit("contoso", "umbrella.example").result["status"] == "approved"
    assert drive.refusal(MarkDealWon, SALES, deal_id=deal_id).code == "illegal_transition"


def test_a_lost_direct_deal_no_longer_holds_up_registrations(drive: Driver) -> None:
    deal_id = drive.open_deal("umbrella.example")
    assert drive.submit("acme", "umbrella.example").result["status"] == "in_review"

    drive.run(MarkDealLost, SALES, deal_id=deal_id, reason="competitor", competitor="Initrode")

    assert drive.submit("globex", "initech.example").result["status"] == "approved"
    lost_again = drive.refusal(MarkDealLost, SALES, deal_id=deal_id, reason="price")
    assert lost_again.code == "illegal_transition"


def test_a_reopened_deal_gets_back_the_protection_time_it_had_left(
    drive: Driver, ledger: DealLedger, clock: ManualClock
) -> None:
    registration_id = drive.registered("acme", "umbrella.example")
    until = ledger.get_registration(registration_id).protected_until
    deal_id = drive.convert(registration_id)
    drive.run(MarkDealLost, SALES, deal_id=deal_id, reason="timing")
    clock.advance(timedelta(days=10))

    outcome = drive.run(ReopenDeal, SALES, deal_id=deal_id, reason="budget found")

    assert (outcome.result["status"], outcome.result["stage"]) == ("open", "lead")
    protection = ledger.get_protection(protection_id(KEY))
    assert (protection.holder, protection.protected_until) == (registration_id, until)
    assert ledger.get_registration(registration_id).status is RegistrationStatus.CONVERTED


def test_a_deal_is_not_reopened_over_a_protection_another_partner_gained_meanwhile(
    drive: Driver,
) -> None:
    """docs/architecture.md, invariant I1."""
    converted = _converted(drive, "acme")
    drive.run(MarkDealLost, SALES, deal_id=converted, reason="timing")
    direct = drive.open_deal("initech.example")
    drive.run(MarkDealLost, SALES, deal_id=direct, reason="price")
    drive.registered("globex", "umbrella.example")
    drive.registered("contoso", "initech.example")

    for deal_id in (converted, direct):
        refusal = drive.refusal(ReopenDeal, SALES, deal_id=deal_id, reason="back")
        assert refusal.code == "channel_conflict"


def test_an_open_deal_is_not_reopened_and_a_passed_date_needs_a_new_one(
    drive: Driver, clock: ManualClock
) -> None:
    deal_id = drive.open_deal(expected_close=drive.close_date(days=5))
    assert drive.refusal(ReopenDeal, SALES, deal_id=deal_id, reason="x").code == (
        "illegal_transition"
    )
    drive.run(MarkDealLost, SALES, deal_id=deal_id, reason="timing")
    clock.advance(timedelta(days=30))

    passed = drive.refusal(ReopenDeal, SALES, deal_id=deal_id, reason="back")
    drive.run(ReopenDeal, SALES, deal_id=deal_id, reason="back", expected_close=drive.close_date())

    assert passed.code == "invalid_input"
