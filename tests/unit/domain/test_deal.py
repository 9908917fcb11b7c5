"""Deal, on the aggregate itself: each public method, the events it records, and the
refusals it gives; a deal replayed from its events equals the live one."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal
from typing import Any
from uuid import uuid4

import pytest

from domain.deal import (
    Deal,
    DealStatus,
    LossReason,
    PartnerRole,
    SupportKind,
    close_date_for_conversion,
)
from domain.errors import (
    IllegalTransition,
    InvalidAttribution,
    InvalidInput,
    ProtectedPartnerRequired,
)
from domain.values import Customer, Money
from tests.unit.domain.builders import (
    BY_SALES,
    NOW,
    assert_replay_equals_live,
    new_deal,
    pending_types,
    usd,
)

D = Decimal

# -- opening ---------------------------------------------------------------------


def test_a_direct_deal_opens_in_the_first_stage_without_partners() -> None:
    deal = new_deal()

    assert pending_types(deal) == [Deal.Opened]
    assert (deal.status, deal.stage, deal.partners, deal.shares) == (
        DealStatus.OPEN,
        "lead",
        {},
        {},
    )
    assert deal.conflict_key == "initech.example|platform"
    assert deal.region == "US"  # no region given: the customer's country
    assert deal.probability == D(10)
    assert deal.weighted_amount == usd("100")


def test_a_sourced_deal_gives_its_sourcing_partner_the_whole_deal() -> None:
    deal = new_deal(sourcing_partner="acme")

    assert deal.sourcing_partner == "acme"
    assert deal.partners == {"acme": PartnerRole.RESELLER}
    assert deal.shares == {"acme": D(100)}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"title": "  "}, "title"),
        ({"owner": ""}, "owner"),
        ({"pipeline": "enterprise"}, "pipeline"),
        ({"stage": "won"}, "stage"),
        ({"stage": "Lead"}, "stage"),
    ],
)
def test_a_deal_with_a_blank_or_unknown_part_is_not_opened(
    change: dict[str, Any], field: str
) -> None:
    fields: dict[str, Any] = {
        "title": "T",
        "owner": "sam",
        "pipeline": "default",
        "stage": None,
        **change,
    }
    with pytest.raises(InvalidInput) as caught:
        Deal.open(
            uuid4(), fields["title"], Customer("Initech", "initech.example", "US"), "Platform",
            usd(1000), date(2026, 6, 30), fields["owner"], "", fields["pipeline"],
            fields["stage"], None, None, None, BY_SALES, NOW,
        )  # fmt: skip
    assert caught.value.details == {"field": field}


def test_a_deal_worth_nothing_is_not_opened() -> None:
    with pytest.raises(InvalidInput) as caught:
        new_deal(amount="0")
    assert caught.value.details == {"field": "amount.amount"}


def test_a_deal_may_close_today_but_is_not_opened_with_a_date_before_today() -> None:
    assert new_deal(expected_close=NOW.date()).expected_close == NOW.date()
    with pytest.raises(InvalidInput) as caught:
        new_deal(expected_close=NOW.date() - timedelta(days=1))
    assert caught.value.details == {"field": "expected_close"}


def test_a_converted_deal_takes_the_given_date_else_the_registrations_while_ahead() -> None:
    ahead, passed, given = date(2026, 4, 1), date(2026, 3, 1), date(2026, 5, 1)

    assert close_date_for_conversion(None, ahead, NOW) == ahead
    assert close_date_for_conversion(given, passed, NOW) == given
    with pytest.raises(InvalidInput) as caught:
        close_date_for_conversion(None, passed, NOW)
    assert "2026-03-01 has passed" in caught.value.message
    assert caught.value.details == {"field": "expected_close"}


# -- stages ----------------------------------------------------------------------


def test_a_stage_move_records_where_from_where_to_and_when() -> None:
    deal = new_deal()
    deal.collect_events()
    later = NOW + timedelta(days=2)

    deal.move_to_stage("proposal", " budget confirmed ", BY_SALES, later)

    events = deal.collect_events()
    assert [type(e) for e in events] == [Deal.StageChanged]
    changed = events[0]
    assert isinstance(changed, Deal.StageChanged)
    assert (changed.from_stage, changed.to_stage, changed.reason) == (
        "lead",
        "proposal",
        "budget confirmed",
    )
    assert (deal.stage, deal.stage_entered_at, deal.probability) == ("proposal", later, D(50))


@pytest.mark.parametrize(
    ("stage", "error"),
    [
        ("lead", IllegalTransition),  # where it is
        ("won", InvalidInput),  # closing has its own commands
        ("lost", InvalidInput),
        ("pitch", InvalidInput),  # not a stage of its pipeline
    ],
)
def test_a_deal_moves_only_to_another_open_stage_of_its_pipeline(
    stage: str, error: type[Exception]
) -> None:
    deal = new_deal()
    deal.collect_events()

    with pytest.raises(error):
        deal.move_to_stage(stage, "", BY_SALES, NOW)

    assert pending_types(deal) == []


# -- revisions -------------------------------------------------------------------


def test_a_revision_of_both_records_both_events() -> None:
    deal = new_deal()
    deal.collect_events()

    deal.revise(usd(2000), date(2026, 9, 30), "scope grew", BY_SALES, NOW)

    assert pending_types(deal) == [Deal.AmountRevised, Deal.CloseDateRevised]
    assert (deal.amount, deal.expected_close) == (usd(2000), date(2026, 9, 30))


def test_the_single_part_revisions_record_one_event_each() -> None:
    deal = new_deal()
    deal.collect_events()

    deal.revise_amount(usd(1500), "", BY_SALES, NOW)
    deal.revise_close_date(date(2026, 7, 31), "", BY_SALES, NOW)

    assert pending_types(deal) == [Deal.AmountRevised, Deal.CloseDateRevised]


@pytest.mark.parametrize(
    ("amount", "expected_close", "error"),
    [
        (usd(2000), date(2026, 6, 30), IllegalTransition),  # close unchanged
        (usd(1000), date(2026, 9, 30), IllegalTransition),  # amount unchanged
        (Money(D(2000), "EUR"), date(2026, 9, 30), InvalidInput),  # other currency
        (usd(2000), date(2019, 6, 30), InvalidInput),  # a date before today
        (usd(0), date(2026, 9, 30), InvalidInput),  # worth nothing
    ],
)
def test_a_revision_with_one_refused_part_records_nothing(
    amount: Money, expected_close: date, error: type[Exception]
) -> None:
    deal = new_deal()
    deal.collect_events()

    with pytest.raises(error):
        deal.revise(amount, expected_close, "", BY_SALES, NOW)

    assert pending_types(deal) == []
    assert (deal.amount, deal.expected_close) == (usd(1000), date(2026, 6, 30))


def test_a_revision_of_nothing_is_invalid_input() -> None:
    with pytest.raises(InvalidInput):
        new_deal().revise(None, None, "", BY_SALES, NOW)


# -- partners and attribution -------------------------------------------------------


def test_the_first_partner_carries_the_whole_deal_and_later_ones_join_at_nothing() -> None:
    deal = new_deal()
    deal.collect_events()

    deal.attach_partner("acme", PartnerRole.RESELLER, BY_SALES, NOW)
    deal.attach_partner("globex", PartnerRole.INFLUENCER, BY_SALES, NOW)

    assert pending_types(deal) == [Deal.PartnerAttached, Deal.PartnerAttached]
    assert deal.partners == {"acme": PartnerRole.RESELLER, "globex": PartnerRole.INFLUENCER}
    assert deal.shares == {"acme": D(100), "globex": D(0)}


def test_a_partner_is_attached_once() -> None:
    deal = new_deal(sourcing_partner="acme")
    deal.collect_events()

    with pytest.raises(IllegalTransition):
        deal.attach_partner("acme", PartnerRole.SERVICES, BY_SALES, NOW)

    assert pending_types(deal) == []


def test_a_detached_partners_share_goes_to_the_sourcing_partner() -> None:
    deal = new_deal(sourcing_partner="acme")
    deal.attach_partner("globex", PartnerRole.INFLUENCER, BY_SALES, NOW)
    deal.set_attribution({"acme": D(70), "globex": D(30)}, BY_SALES, NOW)
    deal.collect_events()

    deal.detach_partner("globex", False, BY_SALES, NOW)

    assert pending_types(deal) == [Deal.PartnerDetached]
    assert (deal.partners, deal.shares) == ({"acme": PartnerRole.RESELLER}, {"acme": D(100)})


def test_the_protected_sourcing_partner_cannot_be_detached() -> None:
    deal = new_deal(sourcing_partner="acme")
    deal.collect_events()

    with pytest.raises(ProtectedPartnerRequired) as caught:
        deal.detach_partner("acme", True, BY_SALES, NOW)

    assert caught.value.code == "protected_partner"
    assert pending_types(deal) == []
    assert "acme" in deal.partners


def test_the_sourcing_partner_may_be_detached_once_its_protection_has_ended() -> None:
    deal = new_deal(sourcing_partner="acme")
    deal.attach_partner("globex", PartnerRole.INFLUENCER, BY_SALES, NOW)

    deal.detach_partner("acme", False, BY_SALES, NOW)

    assert deal.shares == {"globex": D(100)}


def test_a_partner_that_is_not_attached_cannot_be_detached() -> None:
    with pytest.raises(IllegalTransition):
        new_deal().detach_partner("acme", False, BY_SALES, NOW)


def test_an_attribution_split_is_recorded_exactly() -> None:
    """docs/architecture.md, invariant I3: shares are exact and sum to 100."""
    deal = new_deal(sourcing_partner="acme")
    deal.attach_partner("globex", PartnerRole.INFLUENCER, BY_SALES, NOW)
    deal.collect_events()

    deal.set_attribution({"acme": D("66.67"), "globex": D("33.33")}, BY_SALES, NOW)

    assert pending_types(deal) == [Deal.AttributionSplitSet]
    assert deal.shares == {"acme": D("66.67"), "globex": D("33.33")}
    assert sum(deal.shares.values()) == 100


@pytest.mark.parametrize(
    "shares",
    [
        {"acme": D(100)},  # globex left out
        {"acme": D(50), "globex": D(40), "initech": D(10)},  # initech is not attached
        {"acme": D(60), "globex": D(30)},  # 90
        {"acme": D(110), "globex": D(-10)},  # a negative share
    ],
)
def test_an_attribution_that_is_not_exact_over_the_attached_partners_is_refused(
    shares: dict[str, Decimal],
) -> None:
    """docs/architecture.md, invariant I3."""
    deal = new_deal(sourcing_partner="acme")
    deal.attach_partner("globex", PartnerRole.INFLUENCER, BY_SALES, NOW)
    deal.collect_events()

    with pytest.raises(InvalidAttribution):
        deal.set_attribution(shares, BY_SALES, NOW)

    assert pending_types(deal) == []
    assert deal.shares == {"acme": D(100), "globex": D(0)}


# -- support and notes ------------------------------------------------------------


def test_a_support_request_is_requested_assigned_and_resolved() -> None:
    deal = new_deal()
    deal.collect_events()

    deal.request_support("r1", SupportKind.TECHNICAL, " sizing ", BY_SALES, NOW)
    deal.assign_support("r1", " ana ", BY_SALES, NOW)
    deal.resolve_support("r1", "sized", BY_SALES, NOW)

    assert pending_types(deal) == [
        Deal.SupportRequested,
        Deal.SupportAssigned,
        Deal.SupportResolved,
    ]
    assert deal.support["r1"] == {
        "kind": "technical",
        "note": "sizing",
        "status": "resolved",
        "assignee": "ana",
        "resolution": "sized",
    }


def test_support_requests_refuse_what_their_state_does_not_allow() -> None:
    deal = new_deal()
    deal.request_support("r1", SupportKind.PRICING, "", BY_SALES, NOW)

    with pytest.raises(IllegalTransition):
        deal.request_support("r1", SupportKind.PRICING, "", BY_SALES, NOW)  # exists
    with pytest.raises(IllegalTransition):
        deal.assign_support("r2", "ana", BY_SALES, NOW)  # unknown
    with pytest.raises(InvalidInput):
        deal.assign_support("r1", "  ", BY_SALES, NOW)  # nobody
    deal.resolve_support("r1", "", BY_SALES, NOW)
    with pytest.raises(IllegalTransition):
        deal.resolve_support("r1", "", BY_SALES, NOW)  # already resolved
    with pytest.raises(IllegalTransition):
        deal.assign_support("r1", "ana", BY_SALES, NOW)  # resolved


def test_a_note_is_recorded_trimmed_and_a_blank_one_is_refused() -> None:
    deal = new_deal()
    deal.add_note("  called the CFO ", BY_SALES, NOW)
    with pytest.raises(InvalidInput):
        deal.add_note(" ", BY_SALES, NOW)
    (added,) = [e for e in deal.collect_events() if isinstance(e, Deal.NoteAdded)]
    assert added.text == "called the CFO"
    assert deal.note_count == 1


def test_a_v1_snapshot_holding_the_notes_is_upcast_to_their_count() -> None:
    state: dict[str, object] = {"notes": ["a", "b", "c"], "title": "t"}
    Deal.upcast_v1_v2(state)
    assert state == {"note_count": 3, "title": "t"}


# -- closing and reopening ---------------------------------------------------------


def test_a_won_deal_attributes_its_whole_amount_to_its_partners() -> None:
    """docs/architecture.md, invariant I3: attributed revenue sums to the amount."""
    deal = new_deal(amount="1000.01", sourcing_partner="acme")
    deal.attach_partner("globex", PartnerRole.INFLUENCER, BY_SALES, NOW)
    deal.set_attribution({"acme": D(50), "globex": D(50)}, BY_SALES, NOW)
    deal.collect_events()

    deal.win(BY_SALES, NOW)

    assert pending_types(deal) == [Deal.Won]
    assert (deal.status, deal.closed_at) == (DealStatus.WON, NOW)
    assert deal.attributed == {"acme": usd("500.01"), "globex": usd("500.00")}
    assert sum(m.amount for m in deal.attributed.values()) == deal.amount.amount


def test_a_lost_deal_keeps_its_reason_and_competitor() -> None:
    deal = new_deal()
    deal.collect_events()

    deal.lose(LossReason.COMPETITOR, "  Initrode ", "lost on price", BY_SALES, NOW)

    assert pending_types(deal) == [Deal.Lost]
    assert (deal.status, deal.loss_reason, deal.competitor) == (
        DealStatus.LOST,
        LossReason.COMPETITOR,
        "Initrode",
    )


@pytest.mark.parametrize("close", ["win", "lose"])
def test_a_closed_deal_refuses_every_change_but_a_note(close: str) -> None:
    deal = new_deal(sourcing_partner="acme")
    if close == "win":
        deal.win(BY_SALES, NOW)
    else:
        deal.lose(LossReason.PRICE, None, "", BY_SALES, NOW)
    deal.collect_events()

    refused: list[Callable[[], object]] = [
        lambda: deal.move_to_stage("proposal", "", BY_SALES, NOW),
        lambda: deal.revise_amount(usd(5), "", BY_SALES, NOW),
        lambda: deal.attach_partner("globex", PartnerRole.SERVICES, BY_SALES, NOW),
        lambda: deal.detach_partner("acme", False, BY_SALES, NOW),
        lambda: deal.set_attribution({"acme": D(100)}, BY_SALES, NOW),
        lambda: deal.request_support("r1", SupportKind.LEGAL, "", BY_SALES, NOW),
        lambda: deal.win(BY_SALES, NOW),
        lambda: deal.lose(LossReason.PRICE, None, "", BY_SALES, NOW),
    ]
    for change in refused:
        with pytest.raises(IllegalTransition):
            change()
    deal.add_note("post-mortem", BY_SALES, NOW)

    assert pending_types(deal) == [Deal.NoteAdded]


def test_reopening_clears_the_close_and_returns_to_the_stage_given() -> None:
    deal = new_deal()
    deal.lose(LossReason.COMPETITOR, "Initrode", "", BY_SALES, NOW)
    deal.collect_events()

    deal.reopen("negotiation", " budget found ", BY_SALES, NOW)

    assert pending_types(deal) == [Deal.Reopened]
    assert (deal.status, deal.stage, deal.closed_at, deal.loss_reason, deal.competitor) == (
        DealStatus.OPEN,
        "negotiation",
        None,
        None,
        None,
    )


def test_an_open_deal_is_not_reopened_and_a_reopening_needs_a_reason() -> None:
    deal = new_deal()
    with pytest.raises(IllegalTransition):
        deal.reopen(None, "why not", BY_SALES, NOW)
    deal.win(BY_SALES, NOW)
    with pytest.raises(InvalidInput):
        deal.reopen(None, " ", BY_SALES, NOW)
    with pytest.raises(InvalidInput):
        deal.reopen("pitch", "back", BY_SALES, NOW)


def test_reopening_a_deal_whose_date_passed_needs_a_new_date_recorded_as_a_revision() -> None:
    deal = new_deal(expected_close=date(2026, 3, 10))
    deal.lose(LossReason.TIMING, None, "", BY_SALES, NOW)
    later = NOW + timedelta(days=30)
    deal.collect_events()

    with pytest.raises(InvalidInput):
        deal.reopen(None, "budget found", BY_SALES, later)
    with pytest.raises(InvalidInput):
        deal.reopen(None, "budget found", BY_SALES, later, date(2026, 3, 31))
    deal.reopen(None, "budget found", BY_SALES, later, date(2026, 6, 30))

    assert pending_types(deal) == [Deal.Reopened, Deal.CloseDateRevised]
    assert (deal.is_open, deal.expected_close) == (True, date(2026, 6, 30))


def test_reopening_a_deal_whose_date_is_ahead_keeps_it() -> None:
    deal = new_deal()
    deal.win(BY_SALES, NOW)
    deal.collect_events()

    deal.reopen(None, "clawback", BY_SALES, NOW)

    assert pending_types(deal) == [Deal.Reopened]
    assert (deal.expected_close, deal.attributed) == (date(2026, 6, 30), {})


# -- replay -----------------------------------------------------------------------


def test_a_deal_replayed_from_its_events_equals_the_live_deal() -> None:
    """docs/architecture.md, invariant I4, for every kind of deal event."""
    deal = new_deal(sourcing_partner="acme")
    later = NOW + timedelta(days=1)
    deal.move_to_stage("qualified", "", BY_SALES, later)
    deal.revise(usd(2000), date(2026, 8, 31), "", BY_SALES, later)
    deal.attach_partner("globex", PartnerRole.INFLUENCER, BY_SALES, later)
    deal.attach_partner("initech", PartnerRole.SERVICES, BY_SALES, later)
    deal.set_attribution({"acme": D(60), "globex": D(30), "initech": D(10)}, BY_SALES, later)
    deal.detach_partner("initech", False, BY_SALES, later)
    deal.request_support("r1", SupportKind.TECHNICAL, "", BY_SALES, later)
    deal.assign_support("r1", "ana", BY_SALES, later)
    deal.resolve_support("r1", "done", BY_SALES, later)
    deal.add_note("note", BY_SALES, later)
    deal.lose(LossReason.COMPETITOR, "Initrode", "", BY_SALES, later)
    deal.reopen("proposal", "back", BY_SALES, later)
    deal.win(BY_SALES, later)

    assert_replay_equals_live(deal)
