"""Partner commands."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from commands.models import ChangePartnerTier, OnboardPartner, ReinstatePartner, SuspendPartner
from commands.unit_of_work import UnitOfWork
from domain.errors import IllegalTransition
from domain.ids import partner_id
from domain.partner import Partner
from domain.permissions import MANAGERS, actor_must_have_role

Result = tuple[UUID | None, dict[str, Any]]


def onboard_partner(cmd: OnboardPartner, uow: UnitOfWork) -> Result:
    actor_must_have_role(uow.cause.actor, MANAGERS, "onboard partners")
    if uow.find(Partner, partner_id(cmd.partner_code)) is not None:
        raise IllegalTransition(f"partner {cmd.partner_code} is already onboarded")
    partner = uow.add(
        Partner.onboard(cmd.partner_code, cmd.name, cmd.tier, cmd.regions, uow.cause, uow.now)
    )
    return partner.id, {"partner_code": partner.code}


def change_partner_tier(cmd: ChangePartnerTier, uow: UnitOfWork) -> Result:
    actor_must_have_role(uow.cause.actor, MANAGERS, "change partner tiers")
    partner = uow.partner(cmd.partner_code)
    partner.change_tier(cmd.tier, uow.cause, uow.now)
    return partner.id, {"tier": partner.tier.value}


def suspend_partner(cmd: SuspendPartner, uow: UnitOfWork) -> Result:
    actor_must_have_role(uow.cause.actor, MANAGERS, "suspend partners")
    partner = uow.partner(cmd.partner_code)
    partner.suspend(cmd.reason, uow.cause, uow.now)
    return partner.id, {"suspended": True}


def reinstate_partner(cmd: ReinstatePartner, uow: UnitOfWork) -> Result:
    actor_must_have_role(uow.cause.actor, MANAGERS, "reinstate partners")
    partner = uow.partner(cmd.partner_code)
    partner.reinstate(uow.cause, uow.now)
    return partner.id, {"suspended": False}


HANDLERS: dict[type, Any] = {
    OnboardPartner: onboard_partner,
    ChangePartnerTier: change_partner_tier,
    SuspendPartner: suspend_partner,
    ReinstatePartner: reinstate_partner,
}
