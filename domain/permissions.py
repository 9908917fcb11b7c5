"""Who may do what: the one table of role sets, and the domain's own checks.

Partner identity is what access control keys on. The command gateway
(`infra.gateway`) gates every command and query on these same sets before the
ledger is asked; the handlers check them again here, whatever the edge.
"""

from __future__ import annotations

from collections.abc import Iterable

from domain.errors import Forbidden
from domain.values import Actor, ActorKind, Role

PARTNERS = frozenset({Role.PARTNER})
MANAGERS = frozenset({Role.CHANNEL_MANAGER, Role.ADMIN})
SELLERS = frozenset({Role.SALES, Role.CHANNEL_MANAGER, Role.ADMIN})
INTERNAL = frozenset({Role.CHANNEL_MANAGER, Role.SALES, Role.AUDITOR, Role.ADMIN})
EVERYONE = INTERNAL | PARTNERS


def refused(who: Actor, allowed: Iterable[Role], doing: str, /, **details: object) -> Forbidden:
    """The refusal of `who`, whose role is not one of `allowed`, to do `doing`."""
    named = sorted(r.value for r in frozenset(allowed) - {Role.SYSTEM})
    return Forbidden(f"{who} may not {doing}; it needs one of: " + ", ".join(named), **details)


def actor_must_have_role(actor: Actor, roles: Iterable[Role], doing: str) -> None:
    allowed = frozenset(roles) | {Role.SYSTEM}
    if actor.role not in allowed:
        raise refused(actor, allowed, doing, actor=str(actor))


def partner_may_only_act_for_itself(actor: Actor, partner_code: str, doing: str) -> None:
    """A partner acts on its own registrations; managers may act for any partner."""
    if actor.kind is ActorKind.PARTNER:
        if actor.id != partner_code:
            raise Forbidden(
                f"partner {actor.id} may not {doing} for partner {partner_code}",
                actor=str(actor),
            )
        return
    actor_must_have_role(actor, MANAGERS, doing)


def actor_must_be_attached_or_seller(actor: Actor, attached: Iterable[str], doing: str) -> None:
    """Partners attached to a deal may contribute to it; other partners may not."""
    if actor.kind is ActorKind.PARTNER:
        if actor.id not in set(attached):
            raise Forbidden(f"partner {actor.id} is not attached to this deal", actor=str(actor))
        return
    actor_must_have_role(actor, SELLERS, doing)
