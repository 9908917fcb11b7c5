"""Keeping channel protection and the customer indexes in step with registrations."""

from __future__ import annotations

from commands.unit_of_work import UnitOfWork
from domain.protection import ChannelProtection, ReleaseReason
from domain.registration import Registration, RegistrationStatus


def release_customer_claims(uow: UnitOfWork, registration: Registration) -> None:
    for index in uow.customer_indexes(registration):
        index.release(registration.id, uow.cause, uow.now)


def end_registration_claims(
    uow: UnitOfWork, registration: Registration, reason: ReleaseReason
) -> None:
    """After a registration leaves play: drop its pending claim or release its protection."""
    protection = uow.protection(registration.conflict_key)
    protection.drop_claim(registration.id, uow.cause, uow.now)
    protection.release(registration.id, reason, uow.cause, uow.now)
    release_customer_claims(uow, registration)


def release_if_lapsed(uow: UnitOfWork, protection: ChannelProtection) -> bool:
    """A protection past its time no longer blocks anyone, swept or not.

    Expires the holder (when still merely approved) and frees the key, in the same
    unit of work as whatever the caller does next. Returns True when it released.
    """
    if not protection.has_lapsed_at(uow.now) or protection.holder is None:
        return False
    holder = uow.registration(protection.holder)
    if holder.status is RegistrationStatus.APPROVED:
        holder.expire(uow.cause, uow.now)
    protection.release(holder.id, ReleaseReason.EXPIRED, uow.cause, uow.now)
    release_customer_claims(uow, holder)
    return True
