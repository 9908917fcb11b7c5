"""The command route table: each row a resource action mapped onto a command, with
the roles that may call it, the resource a partner must be entitled to, what a
creation answers with, and an example body (shown in OpenAPI, used by tests)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from commands import models as m
from domain.values import Role
from infra.gateway import access

Scope = Literal["none", "registration", "deal"]

_CUSTOMER = {"name": "Umbrella Corp", "domain": "umbrella.example", "country": "GB"}
_MONEY = {"amount": "120000.00", "currency": "USD"}


@dataclass(frozen=True)
class CommandRoute:
    method: str
    path: str
    command: type[m.Command]
    summary: str
    roles: frozenset[Role]
    scope: Scope = "none"
    location: str | None = None  # a 201 route: the created resource, formatted
    optional: tuple[str, ...] = ()
    example: dict[str, Any] = field(default_factory=dict)

    @property
    def created(self) -> bool:
        return self.location is not None

    @property
    def path_fields(self) -> list[str]:
        return [part[1:-1] for part in self.path.split("/") if part.startswith("{")]


_R = "/v1/registrations/{registration_id}"
_D = "/v1/deals/{deal_id}"
_P = "/v1/partners/{partner_code}"
EVERY_PARTNER_OR = access.PARTNERS.union

COMMAND_ROUTES: tuple[CommandRoute, ...] = (
    CommandRoute(
        "POST",
        "/v1/partners",
        m.OnboardPartner,
        "onboard a partner",
        access.MANAGERS,
        location="/v1/partners/{partner_code}",
        example={"partner_code": "acme", "name": "Acme Resellers", "tier": "gold",
                 "regions": ["EMEA"]},
    ),
    CommandRoute("POST", f"{_P}/tier", m.ChangePartnerTier, "change a partner's tier",
                 access.MANAGERS, example={"tier": "platinum"}),
    CommandRoute("POST", f"{_P}/suspend", m.SuspendPartner, "suspend a partner",
                 access.MANAGERS, example={"reason": "contract lapsed"}),
    CommandRoute("POST", f"{_P}/reinstate", m.ReinstatePartner, "reinstate a partner",
                 access.MANAGERS),
    CommandRoute(
        "POST",
        "/v1/registrations",
        m.SubmitRegistration,
        "submit a deal registration",
        EVERY_PARTNER_OR(access.MANAGERS),
        location="/v1/registrations/{aggregate_id}",
        optional=("partner_code",),
        example={"customer": _CUSTOMER, "product_line": "Analytics", "estimated_value": _MONEY,
                 "expected_close": "2027-03-31", "notes": "CFO sponsor"},
    ),
    CommandRoute("POST", f"{_R}/approve", m.ApproveRegistration, "approve a registration",
                 access.MANAGERS, "registration", example={"note": "clean"}),
    CommandRoute("POST", f"{_R}/reject", m.RejectRegistration, "reject a registration",
                 access.MANAGERS, "registration",
                 example={"reason": "duplicate", "note": "already registered"}),
    CommandRoute("POST", f"{_R}/request-info", m.RequestRegistrationInfo,
                 "ask the partner for more information", access.MANAGERS, "registration",
                 example={"note": "who is the economic buyer?"}),
    CommandRoute("POST", f"{_R}/resubmit", m.ResubmitRegistration,
                 "resubmit a registration with the information asked for",
                 EVERY_PARTNER_OR(access.MANAGERS), "registration",
                 example={"customer": _CUSTOMER, "estimated_value": _MONEY,
                          "expected_close": "2027-03-31", "notes": "buyer: the CFO"}),
    CommandRoute("POST", f"{_R}/extend", m.ExtendProtection, "extend channel protection",
                 access.MANAGERS, "registration", example={"days": 30}),
    CommandRoute("POST", f"{_R}/withdraw", m.WithdrawRegistration, "withdraw a registration",
                 EVERY_PARTNER_OR(access.MANAGERS), "registration",
                 example={"note": "customer went elsewhere"}),
    CommandRoute("POST", f"{_R}/convert", m.ConvertRegistration,
                 "convert an approved registration into a deal", access.SELLERS,
                 "registration", location="/v1/deals/{aggregate_id}",
                 example={"title": "Umbrella analytics", "owner": "sam", "region": "EMEA"}),
    CommandRoute(
        "POST",
        "/v1/deals",
        m.OpenDeal,
        "open a direct deal",
        access.SELLERS,
        location="/v1/deals/{aggregate_id}",
        example={"title": "Initech platform", "customer": _CUSTOMER, "product_line": "Platform",
                 "amount": _MONEY, "expected_close": "2027-06-30", "owner": "sam",
                 "region": "EMEA"},
    ),
    CommandRoute("POST", f"{_D}/stage", m.MoveDealStage, "move a deal to a stage",
                 access.SELLERS, "deal", example={"stage": "proposal", "reason": "demo done"}),
    CommandRoute("POST", f"{_D}/revise", m.ReviseDeal,
                 "revise a deal's amount and/or expected close date", access.SELLERS, "deal",
                 example={"amount": _MONEY, "expected_close": "2027-09-30",
                          "reason": "scope grew"}),
    CommandRoute("POST", f"{_D}/partners", m.AttachPartner, "attach a partner to a deal",
                 access.SELLERS, "deal",
                 example={"partner_code": "contoso", "role": "services"}),
    CommandRoute("DELETE", f"{_D}/partners/{{partner_code}}", m.DetachPartner,
                 "detach a partner from a deal", access.SELLERS, "deal"),
    CommandRoute("POST", f"{_D}/attribution", m.SetAttribution, "set the attribution split",
                 access.SELLERS, "deal", example={"shares": {"acme": "70", "contoso": "30"}}),
    CommandRoute("POST", f"{_D}/support", m.RequestSupport, "request support on a deal",
                 EVERY_PARTNER_OR(access.SELLERS), "deal",
                 example={"kind": "technical", "note": "need a PoC engineer"}),
    CommandRoute("POST", f"{_D}/support/{{request_id}}/assign", m.AssignSupport,
                 "assign a support request", access.SELLERS, "deal",
                 example={"assignee": "pat"}),
    CommandRoute("POST", f"{_D}/support/{{request_id}}/resolve", m.ResolveSupport,
                 "resolve a support request", access.SELLERS, "deal",
                 example={"resolution": "PoC delivered"}),
    CommandRoute("POST", f"{_D}/notes", m.AddDealNote, "add a note to a deal",
                 EVERY_PARTNER_OR(access.SELLERS), "deal",
                 example={"text": "customer asked for a discount"}),
    CommandRoute("POST", f"{_D}/won", m.MarkDealWon, "mark a deal won", access.SELLERS, "deal"),
    CommandRoute("POST", f"{_D}/lost", m.MarkDealLost, "mark a deal lost", access.SELLERS,
                 "deal", example={"reason": "competitor", "competitor": "Hooli"}),
    CommandRoute("POST", f"{_D}/reopen", m.ReopenDeal, "reopen a closed deal", access.SELLERS,
                 "deal", example={"reason": "budget found", "stage": "proposal"}),
    CommandRoute("POST", "/v1/protections/expire", m.ExpireProtections,
                 "expire lapsed channel protections now", access.MANAGERS,
                 example={"limit": 1000}),
)  # fmt: skip
