"""Partner: onboarded with a tier and regions; a suspended partner is not in good standing."""

from __future__ import annotations

from typing import Any

import pytest

from domain.errors import IllegalTransition, InvalidInput, PartnerNotInGoodStanding
from domain.ids import partner_id
from domain.partner import Partner, PartnerTier
from tests.unit.domain.builders import BY_MANAGER, NOW, assert_replay_equals_live, pending_types


def _partner() -> Partner:
    return Partner.onboard(
        "acme", " Acme Partners ", PartnerTier.SILVER, ["EMEA", " NA", "EMEA", " "], BY_MANAGER, NOW
    )


def test_an_onboarded_partner_is_found_by_its_code_and_in_good_standing() -> None:
    partner = _partner()

    assert pending_types(partner) == [Partner.Onboarded]
    assert partner.id == partner_id("acme")
    assert (partner.code, partner.name, partner.tier, partner.regions) == (
        "acme",
        "Acme Partners",
        PartnerTier.SILVER,
        ["EMEA", "NA"],
    )
    assert partner.in_good_standing
    partner.must_be_in_good_standing()


@pytest.mark.parametrize(("code", "name"), [(" ", "Acme"), ("acme", "  ")])
def test_a_partner_needs_a_code_and_a_name(code: str, name: str) -> None:
    with pytest.raises(InvalidInput):
        Partner.onboard(code, name, PartnerTier.REGISTERED, [], BY_MANAGER, NOW)


def test_a_tier_change_must_change_the_tier() -> None:
    partner = _partner()
    partner.collect_events()

    partner.change_tier(PartnerTier.GOLD, BY_MANAGER, NOW)
    with pytest.raises(IllegalTransition):
        partner.change_tier(PartnerTier.GOLD, BY_MANAGER, NOW)

    assert pending_types(partner) == [Partner.TierChanged]
    assert partner.tier is PartnerTier.GOLD


def test_a_suspended_partner_is_not_in_good_standing_until_reinstated() -> None:
    partner = _partner()
    partner.collect_events()

    partner.suspend(" unpaid fees ", BY_MANAGER, NOW)

    assert not partner.in_good_standing
    with pytest.raises(PartnerNotInGoodStanding, match="unpaid fees") as caught:
        partner.must_be_in_good_standing()
    assert caught.value.code == "partner_suspended"
    partner.reinstate(BY_MANAGER, NOW)
    assert pending_types(partner) == [Partner.Suspended, Partner.Reinstated]
    assert (partner.in_good_standing, partner.suspension_reason) == (True, "")


def test_suspension_needs_a_reason_and_neither_step_repeats() -> None:
    partner = _partner()
    with pytest.raises(InvalidInput):
        partner.suspend(" ", BY_MANAGER, NOW)
    with pytest.raises(IllegalTransition):
        partner.reinstate(BY_MANAGER, NOW)
    partner.suspend("audit", BY_MANAGER, NOW)
    with pytest.raises(IllegalTransition):
        partner.suspend("audit", BY_MANAGER, NOW)


def test_a_v1_onboarding_without_regions_is_upcast_with_none() -> None:
    state: dict[str, Any] = {"code": "old"}
    Partner.Onboarded.upcast_v1_v2(state)
    assert state == {"code": "old", "regions": []}


def test_a_partner_replayed_from_its_events_equals_the_live_one() -> None:
    """docs/architecture.md, invariant I4."""
    partner = _partner()
    partner.change_tier(PartnerTier.PLATINUM, BY_MANAGER, NOW)
    partner.suspend("audit", BY_MANAGER, NOW)
    partner.reinstate(BY_MANAGER, NOW)

    assert_replay_equals_live(partner)
