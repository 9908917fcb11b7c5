"""The auto-approval policy, as named business rules."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from uuid import UUID

from domain.partner import Partner
from domain.protection import ChannelProtection, CustomerIndex
from domain.registration import Registration, ReviewReason


def value_is_within_auto_approval_limit(
    registration: Registration, limits: Mapping[str, Decimal]
) -> bool:
    """Limits are per currency; a currency without a limit always goes to review."""
    limit = limits.get(registration.estimated_value.currency)
    return limit is not None and registration.estimated_value.amount <= limit


def review_reasons(
    registration: Registration,
    partner: Partner,
    protection: ChannelProtection,
    indexes: list[CustomerIndex],
    limits: Mapping[str, Decimal],
    at: datetime,
) -> list[ReviewReason]:
    """Why this submission may not be approved at once; empty means approve it.

    Auto-approval needs: a partner in good standing, a free key (neither protected
    nor pending for anyone else, nor worked as a direct deal), no near-duplicate,
    and a value within the limit.
    """
    partner.must_be_in_good_standing()
    reasons: list[ReviewReason] = []
    if protection.is_protected_at(at):
        reasons.append(ReviewReason.KEY_PROTECTED)
    if protection.is_contested_by_others(registration.id):
        reasons.append(ReviewReason.KEY_CONTESTED)
    if protection.has_open_direct_deal:
        reasons.append(ReviewReason.DIRECT_DEAL_OPEN)
    if any(index.other_keys_than(registration.conflict_key) for index in indexes):
        reasons.append(ReviewReason.NEAR_DUPLICATE)
    if not value_is_within_auto_approval_limit(registration, limits):
        reasons.append(ReviewReason.ABOVE_AUTO_APPROVAL_LIMIT)
    return reasons


def related_registrations(
    registration_id: UUID,
    key: str,
    protection: ChannelProtection,
    indexes: list[CustomerIndex],
    at: datetime,
) -> dict[str, list[UUID]]:
    """The registrations behind the key_protected, key_contested and near_duplicate
    reasons of registration `registration_id` on conflict key `key`, so a reviewer
    sees whom it collides with."""
    related: dict[str, list[UUID]] = {}
    if protection.is_protected_at(at) and protection.holder not in (None, registration_id):
        related[ReviewReason.KEY_PROTECTED.value] = [protection.holder]
    others = [UUID(rid) for rid in protection.pending if rid != str(registration_id)]
    if others:
        related[ReviewReason.KEY_CONTESTED.value] = others
    near = {
        UUID(rid)
        for index in indexes
        for rid, claimed_key in index.claims.items()
        if claimed_key != key and rid != str(registration_id)
    }
    if near:
        related[ReviewReason.NEAR_DUPLICATE.value] = sorted(near, key=str)
    return related
