"""Deal commands: direct opening, stage moves, partners, attribution, support, closing."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from commands.handlers.protection import release_customer_claims, release_if_lapsed
from commands.models import (
    AddDealNote,
    AssignSupport,
    AttachPartner,
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
)
from commands.unit_of_work import UnitOfWork
from domain.deal import Deal
from domain.errors import ChannelConflict
from domain.ids import new_aggregate_id
from domain.normalise import conflict_key
from domain.permissions import SELLERS, actor_must_be_attached_or_seller, actor_must_have_role
from domain.protection import ReleaseReason

Result = tuple[UUID | None, dict[str, Any]]


def _state(deal: Deal) -> dict[str, Any]:
    return {
        "deal_id": str(deal.id),
        "status": deal.status.value,
        "stage": deal.stage,
        "amount": deal.amount.to_json(),
        "shares": {p: str(s) for p, s in sorted(deal.shares.items())},
    }


def _deal_for_seller(uow: UnitOfWork, deal_id: UUID, doing: str) -> Deal:
    actor_must_have_role(uow.cause.actor, SELLERS, doing)
    return uow.get(Deal, deal_id)


def _sourcing_partner_is_protected(uow: UnitOfWork, deal: Deal) -> bool:
    if deal.registration_id is None:
        return False
    return uow.protection(deal.conflict_key).protects(deal.registration_id, uow.now)


def open_deal(cmd: OpenDeal, uow: UnitOfWork) -> Result:
    actor_must_have_role(uow.cause.actor, SELLERS, "open deals")
    protection = uow.protection(conflict_key(cmd.customer.domain, cmd.product_line))
    protection.refuse_direct_deal_if_protected(uow.now)
    deal = uow.add(
        Deal.open(
            new_aggregate_id("deal", cmd.command_id),
            cmd.title,
            cmd.customer.to_domain(),
            cmd.product_line,
            cmd.amount.to_domain(),
            cmd.expected_close,
            cmd.owner,
            cmd.region,
            cmd.pipeline,
            cmd.stage,
            None,
            None,
            None,
            uow.cause,
            uow.now,
        )
    )
    protection.record_direct_deal(deal.id, uow.cause, uow.now)
    return deal.id, _state(deal)


def move_deal_stage(cmd: MoveDealStage, uow: UnitOfWork) -> Result:
    deal = _deal_for_seller(uow, cmd.deal_id, "move deals")
    deal.move_to_stage(cmd.stage, cmd.reason, uow.cause, uow.now)
    return deal.id, _state(deal)


def revise_deal(cmd: ReviseDeal, uow: UnitOfWork) -> Result:
    deal = _deal_for_seller(uow, cmd.deal_id, "revise deals")
    amount = cmd.amount.to_domain() if cmd.amount is not None else None
    deal.revise(amount, cmd.expected_close, cmd.reason, uow.cause, uow.now)
    return deal.id, _state(deal)


def revise_deal_amount(cmd: ReviseDealAmount, uow: UnitOfWork) -> Result:
    deal = _deal_for_seller(uow, cmd.deal_id, "revise deals")
    deal.revise_amount(cmd.amount.to_domain(), cmd.reason, uow.cause, uow.now)
    return deal.id, _state(deal)


def revise_deal_close_date(cmd: ReviseDealCloseDate, uow: UnitOfWork) -> Result:
    deal = _deal_for_seller(uow, cmd.deal_id, "revise deals")
    deal.revise_close_date(cmd.expected_close, cmd.reason, uow.cause, uow.now)
    return deal.id, _state(deal)


def attach_partner(cmd: AttachPartner, uow: UnitOfWork) -> Result:
    deal = _deal_for_seller(uow, cmd.deal_id, "attach partners")
    uow.partner(cmd.partner_code).must_be_in_good_standing()
    deal.attach_partner(cmd.partner_code, cmd.role, uow.cause, uow.now)
    return deal.id, _state(deal)


def detach_partner(cmd: DetachPartner, uow: UnitOfWork) -> Result:
    deal = _deal_for_seller(uow, cmd.deal_id, "detach partners")
    protected = _sourcing_partner_is_protected(uow, deal)
    deal.detach_partner(cmd.partner_code, protected, uow.cause, uow.now)
    return deal.id, _state(deal)


def set_attribution(cmd: SetAttribution, uow: UnitOfWork) -> Result:
    deal = _deal_for_seller(uow, cmd.deal_id, "set attribution")
    deal.set_attribution(dict(cmd.shares), uow.cause, uow.now)
    return deal.id, _state(deal)


def request_support(cmd: RequestSupport, uow: UnitOfWork) -> Result:
    deal = uow.get(Deal, cmd.deal_id)
    actor_must_be_attached_or_seller(uow.cause.actor, deal.partners, "request support")
    request_id = str(new_aggregate_id("support", cmd.command_id))[:8]
    deal.request_support(request_id, cmd.kind, cmd.note, uow.cause, uow.now)
    return deal.id, {**_state(deal), "request_id": request_id}


def assign_support(cmd: AssignSupport, uow: UnitOfWork) -> Result:
    deal = _deal_for_seller(uow, cmd.deal_id, "assign support")
    deal.assign_support(cmd.request_id, cmd.assignee, uow.cause, uow.now)
    return deal.id, _state(deal)


def resolve_support(cmd: ResolveSupport, uow: UnitOfWork) -> Result:
    deal = _deal_for_seller(uow, cmd.deal_id, "resolve support")
    deal.resolve_support(cmd.request_id, cmd.resolution, uow.cause, uow.now)
    return deal.id, _state(deal)


def add_deal_note(cmd: AddDealNote, uow: UnitOfWork) -> Result:
    deal = uow.get(Deal, cmd.deal_id)
    actor_must_be_attached_or_seller(uow.cause.actor, deal.partners, "add notes")
    deal.add_note(cmd.text, uow.cause, uow.now)
    return deal.id, _state(deal)


def _end_protection_on_close(uow: UnitOfWork, deal: Deal) -> None:
    """Protection ends when the converted deal closes, won or lost."""
    protection = uow.protection(deal.conflict_key)
    if deal.registration_id is None:
        protection.close_direct_deal(deal.id, uow.cause, uow.now)
        return
    if protection.release(deal.registration_id, ReleaseReason.DEAL_CLOSED, uow.cause, uow.now):
        release_customer_claims(uow, uow.registration(deal.registration_id))


def mark_deal_won(cmd: MarkDealWon, uow: UnitOfWork) -> Result:
    deal = _deal_for_seller(uow, cmd.deal_id, "close deals")
    deal.win(uow.cause, uow.now)
    _end_protection_on_close(uow, deal)
    attributed = {p: m.to_json() for p, m in sorted(deal.attributed.items())}
    return deal.id, {**_state(deal), "attributed": attributed}


def mark_deal_lost(cmd: MarkDealLost, uow: UnitOfWork) -> Result:
    deal = _deal_for_seller(uow, cmd.deal_id, "close deals")
    deal.lose(cmd.reason, cmd.competitor, cmd.note, uow.cause, uow.now)
    _end_protection_on_close(uow, deal)
    return deal.id, _state(deal)


def _restore_protection_on_reopen(uow: UnitOfWork, deal: Deal, registration_id: UUID) -> None:
    """Closing ended the protection; reopening restores it for the time it had left,
    unless another partner holds the key by now (then the reopen is refused)."""
    protection = uow.protection(deal.conflict_key)
    release_if_lapsed(uow, protection)
    if protection.is_protected_at(uow.now) and protection.holder != registration_id:
        raise ChannelConflict(
            f"{deal.conflict_key} is now protected for partner {protection.holder_partner}; "
            "this deal cannot be reopened",
            conflict_key=deal.conflict_key,
            holder_registration_id=str(protection.holder),
        )
    registration = uow.registration(registration_id)
    until = registration.protected_until
    if protection.holder is None and until is not None and until > uow.now:
        protection.grant(registration.id, registration.partner_code, until, uow.cause, uow.now)
        for index in uow.customer_indexes(registration):
            index.claim(registration.id, registration.conflict_key, uow.cause, uow.now)


def reopen_deal(cmd: ReopenDeal, uow: UnitOfWork) -> Result:
    deal = _deal_for_seller(uow, cmd.deal_id, "reopen deals")
    deal.reopen(cmd.stage, cmd.reason, uow.cause, uow.now, cmd.expected_close)
    protection = uow.protection(deal.conflict_key)
    if deal.registration_id is None:
        protection.record_direct_deal(deal.id, uow.cause, uow.now)
    else:
        _restore_protection_on_reopen(uow, deal, deal.registration_id)
    return deal.id, _state(deal)


HANDLERS: dict[type, Any] = {
    OpenDeal: open_deal,
    MoveDealStage: move_deal_stage,
    ReviseDeal: revise_deal,
    ReviseDealAmount: revise_deal_amount,
    ReviseDealCloseDate: revise_deal_close_date,
    AttachPartner: attach_partner,
    DetachPartner: detach_partner,
    SetAttribution: set_attribution,
    RequestSupport: request_support,
    AssignSupport: assign_support,
    ResolveSupport: resolve_support,
    AddDealNote: add_deal_note,
    MarkDealWon: mark_deal_won,
    MarkDealLost: mark_deal_lost,
    ReopenDeal: reopen_deal,
}
