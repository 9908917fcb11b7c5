"""The command policy table: for each command type, who may issue it.

A row names what the command does (the words of a refusal and of the docs), the
roles that may issue it (`domain.permissions`), the resource a partner must be
entitled to (none, the registration or the deal the fields name) and the fields a
partner may leave out to mean itself. Every edge issues commands under this one
table; the HTTP routes only map a method and path onto a command type.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from commands import models as m
from domain.permissions import MANAGERS, PARTNERS, SELLERS
from domain.values import Role
from infra.gateway.problems import InvalidRequest

Scope = Literal["none", "registration", "deal"]


@dataclass(frozen=True)
class CommandPolicy:
    command: type[m.Command]
    doing: str  # "approve a registration": refusals say "... may not approve a registration"
    roles: frozenset[Role]
    scope: Scope = "none"  # a partner must be entitled to this resource (else 404)
    self_filled: tuple[str, ...] = ()  # left out by a partner: its own partner code

    @property
    def type_name(self) -> str:
        return self.command.type_name


PARTNER_OR_MANAGER = PARTNERS | MANAGERS
PARTNER_OR_SELLER = PARTNERS | SELLERS
_REVISE = "revise a deal's amount and/or expected close date"

POLICIES: dict[str, CommandPolicy] = {
    p.type_name: p
    for p in (
        CommandPolicy(m.OnboardPartner, "onboard a partner", MANAGERS),
        CommandPolicy(m.ChangePartnerTier, "change a partner's tier", MANAGERS),
        CommandPolicy(m.SuspendPartner, "suspend a partner", MANAGERS),
        CommandPolicy(m.ReinstatePartner, "reinstate a partner", MANAGERS),
        CommandPolicy(m.SubmitRegistration, "submit a deal registration", PARTNER_OR_MANAGER,
                      self_filled=("partner_code",)),
        CommandPolicy(m.ApproveRegistration, "approve a registration", MANAGERS, "registration"),
        CommandPolicy(m.RejectRegistration, "reject a registration", MANAGERS, "registration"),
        CommandPolicy(m.RequestRegistrationInfo, "ask the partner for more information",
                      MANAGERS, "registration"),
        CommandPolicy(m.ResubmitRegistration,
                      "resubmit a registration with the information asked for",
                      PARTNER_OR_MANAGER, "registration"),
        CommandPolicy(m.ExtendProtection, "extend channel protection", MANAGERS, "registration"),
        CommandPolicy(m.WithdrawRegistration, "withdraw a registration", PARTNER_OR_MANAGER,
                      "registration"),
        CommandPolicy(m.ConvertRegistration, "convert an approved registration into a deal",
                      SELLERS, "registration"),
        CommandPolicy(m.OpenDeal, "open a direct deal", SELLERS),
        CommandPolicy(m.MoveDealStage, "move a deal to a stage", SELLERS, "deal"),
        # The single-field revisions are issued (on the command topic) under the gate
        # of the revision of both.
        CommandPolicy(m.ReviseDeal, _REVISE, SELLERS, "deal"),
        CommandPolicy(m.ReviseDealAmount, _REVISE, SELLERS, "deal"),
        CommandPolicy(m.ReviseDealCloseDate, _REVISE, SELLERS, "deal"),
        CommandPolicy(m.AttachPartner, "attach a partner to a deal", SELLERS, "deal"),
        CommandPolicy(m.DetachPartner, "detach a partner from a deal", SELLERS, "deal"),
        CommandPolicy(m.SetAttribution, "set the attribution split", SELLERS, "deal"),
        CommandPolicy(m.RequestSupport, "request support on a deal", PARTNER_OR_SELLER, "deal"),
        CommandPolicy(m.AssignSupport, "assign a support request", SELLERS, "deal"),
        CommandPolicy(m.ResolveSupport, "resolve a support request", SELLERS, "deal"),
        CommandPolicy(m.AddDealNote, "add a note to a deal", PARTNER_OR_SELLER, "deal"),
        CommandPolicy(m.MarkDealWon, "mark a deal won", SELLERS, "deal"),
        CommandPolicy(m.MarkDealLost, "mark a deal lost", SELLERS, "deal"),
        CommandPolicy(m.ReopenDeal, "reopen a closed deal", SELLERS, "deal"),
        CommandPolicy(m.ExpireProtections, "expire lapsed channel protections now", MANAGERS),
        CommandPolicy(m.EraseDataSubject, "erase a data subject's personal data", MANAGERS),
    )
}  # fmt: skip


def policy_for(command_type: str) -> CommandPolicy:
    """The policy of `command_type`; an unknown type is an invalid request."""
    policy = POLICIES.get(command_type)
    if policy is None:
        raise InvalidRequest(
            [{"loc": ("type",), "msg": f"unknown command type {command_type!r}", "type": "enum"}]
        )
    return policy
