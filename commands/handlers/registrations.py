"""Registration commands: submission with the auto-approval policy, review, lifecycle."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import UUID

from commands.handlers.protection import (
    end_registration_claims,
    release_customer_claims,
    release_if_lapsed,
)
from commands.models import (
    ApproveRegistration,
    ConvertRegistration,
    ExtendProtection,
    RejectRegistration,
    RequestRegistrationInfo,
    ResubmitRegistration,
    SubmitRegistration,
    WithdrawRegistration,
)
from commands.unit_of_work import UnitOfWork
from domain.deal import Deal, close_date_for_conversion
from domain.errors import IllegalTransition
from domain.ids import new_aggregate_id
from domain.permissions import (
    MANAGERS,
    SELLERS,
    actor_must_have_role,
    partner_may_only_act_for_itself,
)
from domain.policy import related_registrations, review_reasons
from domain.protection import ReleaseReason
from domain.registration import Registration, RegistrationStatus

Result = tuple[UUID | None, dict[str, Any]]


def _state(registration: Registration) -> dict[str, Any]:
    return {
        "registration_id": str(registration.id),
        "status": registration.status.value,
        "conflict_key": registration.conflict_key,
        "protected_until": (
            registration.protected_until.isoformat() if registration.protected_until else None
        ),
        "review_reasons": list(registration.review_reasons),
    }


def submit_registration(cmd: SubmitRegistration, uow: UnitOfWork) -> Result:
    partner_may_only_act_for_itself(uow.cause.actor, cmd.partner_code, "submit a registration")
    uow.load_claim(cmd.partner_code, cmd.customer.to_domain(), cmd.product_line)
    partner = uow.partner(cmd.partner_code)
    partner.must_be_in_good_standing()
    registration = uow.add(
        Registration.submit(
            new_aggregate_id("registration", cmd.command_id),
            cmd.partner_code,
            cmd.customer.to_domain(),
            cmd.product_line,
            cmd.estimated_value.to_domain(),
            cmd.expected_close,
            cmd.notes,
            uow.cause,
            uow.now,
            contact=cmd.contact.to_domain() if cmd.contact else None,
        )
    )
    protection = uow.protection(registration.conflict_key)
    release_if_lapsed(uow, protection)
    indexes = uow.customer_indexes(registration)
    reasons = review_reasons(
        registration, partner, protection, indexes, uow.policy.auto_approve_limits, uow.now
    )
    if reasons:
        related = related_registrations(
            registration.id, registration.conflict_key, protection, indexes, uow.now
        )
        registration.send_to_review([r.value for r in reasons], related, uow.cause, uow.now)
        protection.claim(registration.id, partner.code, uow.cause, uow.now)
    else:
        until = uow.now + timedelta(days=uow.policy.protection_days)
        registration.approve(until, True, uow.cause, uow.now)
        protection.grant(registration.id, partner.code, until, uow.cause, uow.now)
    for index in indexes:
        index.claim(registration.id, registration.conflict_key, uow.cause, uow.now)
    return registration.id, _state(registration)


def approve_registration(cmd: ApproveRegistration, uow: UnitOfWork) -> Result:
    actor_must_have_role(uow.cause.actor, MANAGERS, "approve registrations")
    registration = uow.registration(cmd.registration_id)
    protection = uow.protection(registration.conflict_key)
    release_if_lapsed(uow, protection)
    until = uow.now + timedelta(days=uow.policy.protection_days)
    registration.approve(until, False, uow.cause, uow.now)
    protection.grant(registration.id, registration.partner_code, until, uow.cause, uow.now)
    return registration.id, _state(registration)


def reject_registration(cmd: RejectRegistration, uow: UnitOfWork) -> Result:
    actor_must_have_role(uow.cause.actor, MANAGERS, "reject registrations")
    registration = uow.registration(cmd.registration_id)
    registration.reject(cmd.reason, cmd.note, uow.cause, uow.now)
    end_registration_claims(uow, registration, ReleaseReason.REJECTED)
    return registration.id, _state(registration)


def request_registration_info(cmd: RequestRegistrationInfo, uow: UnitOfWork) -> Result:
    actor_must_have_role(uow.cause.actor, MANAGERS, "request information on registrations")
    registration = uow.registration(cmd.registration_id)
    registration.request_action(cmd.note, uow.cause, uow.now)
    return registration.id, _state(registration)


def resubmit_registration(cmd: ResubmitRegistration, uow: UnitOfWork) -> Result:
    registration = uow.registration(cmd.registration_id)
    partner_may_only_act_for_itself(
        uow.cause.actor, registration.partner_code, "resubmit this registration"
    )
    # The company name may change, so the name index claims move with it.
    release_customer_claims(uow, registration)
    customer = cmd.customer.to_domain()
    indexes = uow.customer_indexes_of(customer, registration.product_line)
    related = related_registrations(
        registration.id,
        registration.conflict_key,
        uow.protection(registration.conflict_key),
        indexes,
        uow.now,
    )
    registration.resubmit(
        customer,
        cmd.estimated_value.to_domain(),
        cmd.expected_close,
        cmd.notes,
        related,
        uow.cause,
        uow.now,
        contact=cmd.contact.to_domain() if cmd.contact else None,
    )
    for index in indexes:
        index.claim(registration.id, registration.conflict_key, uow.cause, uow.now)
    return registration.id, _state(registration)


def extend_protection(cmd: ExtendProtection, uow: UnitOfWork) -> Result:
    actor_must_have_role(uow.cause.actor, MANAGERS, "extend protection")
    registration = uow.registration(cmd.registration_id)
    if registration.protected_until is None:
        raise IllegalTransition("this registration holds no protection to extend")
    days = cmd.days or uow.policy.protection_days
    until = registration.protected_until + timedelta(days=days)
    protection = uow.protection(registration.conflict_key)
    registration.extend(until, uow.policy.max_extensions, uow.cause, uow.now)
    protection.extend(registration.id, until, uow.cause, uow.now)
    return registration.id, _state(registration)


def withdraw_registration(cmd: WithdrawRegistration, uow: UnitOfWork) -> Result:
    registration = uow.registration(cmd.registration_id)
    partner_may_only_act_for_itself(
        uow.cause.actor, registration.partner_code, "withdraw this registration"
    )
    registration.withdraw(cmd.note, uow.cause, uow.now)
    end_registration_claims(uow, registration, ReleaseReason.WITHDRAWN)
    return registration.id, _state(registration)


def convert_registration(cmd: ConvertRegistration, uow: UnitOfWork) -> Result:
    actor_must_have_role(uow.cause.actor, SELLERS, "convert registrations into deals")
    registration = uow.registration(cmd.registration_id)
    protection = uow.protection(registration.conflict_key)
    if registration.status is RegistrationStatus.APPROVED and not protection.protects(
        registration.id, uow.now
    ):
        raise IllegalTransition("protection has lapsed; the registration cannot be converted")
    deal = uow.add(
        Deal.open(
            new_aggregate_id("deal", cmd.command_id),
            cmd.title,
            registration.customer,
            registration.product_line,
            cmd.amount.to_domain() if cmd.amount else registration.estimated_value,
            close_date_for_conversion(cmd.expected_close, registration.expected_close, uow.now),
            cmd.owner,
            cmd.region,
            cmd.pipeline,
            cmd.stage,
            registration.id,
            registration.partner_code,
            cmd.role,
            uow.cause,
            uow.now,
        )
    )
    registration.convert(deal.id, uow.cause, uow.now)
    return deal.id, {**_state(registration), "deal_id": str(deal.id)}


HANDLERS: dict[type, Any] = {
    SubmitRegistration: submit_registration,
    ApproveRegistration: approve_registration,
    RejectRegistration: reject_registration,
    RequestRegistrationInfo: request_registration_info,
    ResubmitRegistration: resubmit_registration,
    ExtendProtection: extend_protection,
    WithdrawRegistration: withdraw_registration,
    ConvertRegistration: convert_registration,
}
