"""Who may see and do what, decided before the ledger is asked: one implementation
for commands (the gateway) and queries (the HTTP query routes) alike.

- Role gates: each command and query names the roles that may issue it (role sets
  from `domain.permissions`); any other role gets 403 whatever the resource, so a
  403 reveals nothing about what exists.
- Partner scope: a partner sees only its own registrations, itself, and deals it is
  attached to. Anything else answers exactly like a resource that does not exist
  (404 with the same body), so partners cannot probe for others' data; lists show
  a partner only the rows it is on (`listed_partners`).

The ledger enforces the same rules again (domain.permissions); these checks exist
so that the edge never leaks existence and never writes on a partner's behalf for
another partner.
"""

from __future__ import annotations

from collections.abc import Iterable
from uuid import UUID

from commands.ledger import DealLedger
from domain.deal import Deal
from domain.errors import NotFound
from domain.partner import Partner
from domain.permissions import refused
from domain.registration import Registration
from domain.values import Role
from infra.gateway.principals import Principal


def require_role(principal: Principal, roles: Iterable[Role], doing: str) -> None:
    allowed = frozenset(roles)
    if principal.role not in allowed:
        raise refused(principal.actor, allowed, doing, role=principal.role.value)


def unknown(kind: str, identifier: object) -> NotFound:
    """The one answer for 'does not exist' and 'not yours to see'."""
    return NotFound(f"no {kind} {identifier}", **{f"{kind}_id": str(identifier)})


def listed_partners(principal: Principal, requested: str | None) -> frozenset[str]:
    """The partners each row of a list must be on: a partner's own code (it lists only
    its own rows), and the partner the caller filters by, if any."""
    return frozenset(p for p in (principal.partner_code, requested) if p is not None)


def registration_for(
    ledger: DealLedger, principal: Principal, registration_id: UUID
) -> Registration:
    try:
        registration = ledger.get_registration(registration_id)
    except NotFound:
        raise unknown("registration", registration_id) from None
    if principal.is_partner and registration.partner_code != principal.partner_code:
        raise unknown("registration", registration_id)
    return registration


def deal_for(ledger: DealLedger, principal: Principal, deal_id: UUID) -> Deal:
    try:
        deal = ledger.get_deal(deal_id)
    except NotFound:
        raise unknown("deal", deal_id) from None
    if principal.is_partner and principal.partner_code not in deal.partners:
        raise unknown("deal", deal_id)
    return deal


def partner_for(ledger: DealLedger, principal: Principal, partner_code: str) -> Partner:
    if principal.is_partner and partner_code != principal.partner_code:
        raise unknown("partner", partner_code)
    try:
        return ledger.get_partner(partner_code)
    except NotFound:
        raise unknown("partner", partner_code) from None
