"""Who may do what. Partner identity is what access control keys on."""

from __future__ import annotations

from collections.abc import Iterable

from domain.errors import Forbidden
from domain.values import Actor, ActorKind, Role

MANAGERS = frozenset({Role.CHANNEL_MANAGER, Role.ADMIN})
SELLERS = frozenset({Role.SALES, Role.CHANNEL_MANAGER, Role.ADMIN})


def actor_must_have_role(actor: Actor, roles: Iterable[Role], doing: str) -> None:
    allowed = frozenset(roles) | {Role.SYSTEM}
    if actor.role not in allowed:
        raise Forbidden(
            f"{actor} may not {doing}; it needs one of: "
            + ", ".join(sorted(r.value for r in allowed - {Role.SYSTEM})),
            actor=str(actor),
        )


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
