"""Partner commands through the ledger: onboarding, tiers, suspension."""

from __future__ import annotations

import pytest

from commands.ledger import DealLedger
from commands.models import (
    ChangePartnerTier,
    Command,
    OnboardPartner,
    ReinstatePartner,
    SuspendPartner,
)
from domain.partner import PartnerTier
from domain.values import Actor
from tests.support.actors import ADMIN, MANAGER, SALES, SYSTEM, partner
from tests.support.driver import Driver


@pytest.mark.parametrize("actor", [MANAGER, ADMIN, SYSTEM])
def test_a_manager_onboards_a_partner_with_its_tier_and_regions(
    drive: Driver, ledger: DealLedger, actor: Actor
) -> None:
    outcome = drive.run(
        OnboardPartner, actor, partner_code="initech", name="Initech", tier="gold",
        regions=["EMEA", "NA"],
    )  # fmt: skip

    assert outcome.result == {"partner_code": "initech"}
    onboarded = ledger.get_partner("initech")
    assert (onboarded.tier, onboarded.regions) == (PartnerTier.GOLD, ["EMEA", "NA"])
    assert outcome.aggregate_id == onboarded.id


@pytest.mark.parametrize("actor", [SALES, partner("acme")])
def test_only_managers_onboard_partners(drive: Driver, actor: Actor) -> None:
    refusal = drive.refusal(OnboardPartner, actor, partner_code="initech", name="Initech")
    assert refusal.code == "forbidden"


def test_a_partner_is_onboarded_once(drive: Driver) -> None:
    refusal = drive.refusal(OnboardPartner, MANAGER, partner_code="acme", name="Acme again")
    assert refusal.code == "illegal_transition"


def test_a_partner_named_only_in_blanks_is_invalid_input(drive: Driver) -> None:
    refusal = drive.refusal(OnboardPartner, MANAGER, partner_code="initech", name="   ")
    assert refusal.code == "invalid_input"


def test_a_tier_change_is_recorded_and_must_change_the_tier(
    drive: Driver, ledger: DealLedger
) -> None:
    outcome = drive.run(ChangePartnerTier, MANAGER, partner_code="acme", tier="platinum")

    assert outcome.result == {"tier": "platinum"}
    assert ledger.get_partner("acme").tier is PartnerTier.PLATINUM
    again = drive.refusal(ChangePartnerTier, MANAGER, partner_code="acme", tier="platinum")
    assert again.code == "illegal_transition"


def test_partner_commands_name_an_onboarded_partner(drive: Driver) -> None:
    steps: list[tuple[type[Command], dict[str, str]]] = [
        (ChangePartnerTier, {"tier": "gold"}),
        (SuspendPartner, {"reason": "audit"}),
        (ReinstatePartner, {}),
    ]
    for command_type, fields in steps:
        refusal = drive.refusal(command_type, MANAGER, partner_code="nobody", **fields)
        assert refusal.code == "not_found", command_type


def test_a_suspended_partner_is_reinstated_and_neither_step_repeats(
    drive: Driver, ledger: DealLedger
) -> None:
    assert drive.run(SuspendPartner, MANAGER, partner_code="acme", reason="audit").result == {
        "suspended": True
    }
    assert ledger.get_partner("acme").suspended
    assert drive.refusal(SuspendPartner, MANAGER, partner_code="acme", reason="x").code == (
        "illegal_transition"
    )

    assert drive.run(ReinstatePartner, MANAGER, partner_code="acme").result == {"suspended": False}
    assert drive.refusal(ReinstatePartner, MANAGER, partner_code="acme").code == (
        "illegal_transition"
    )


@pytest.mark.parametrize(
    ("command_type", "fields"),
    [
        (ChangePartnerTier, {"tier": "gold"}),
        (SuspendPartner, {"reason": "audit"}),
        (ReinstatePartner, {}),
    ],
)
def test_only_managers_change_a_partners_standing(
    drive: Driver, command_type: type[Command], fields: dict[str, str]
) -> None:
    for actor in (SALES, partner("acme")):
        refusal = drive.refusal(command_type, actor, partner_code="acme", **fields)
        assert refusal.code == "forbidden"
