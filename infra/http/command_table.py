"""The command route table: each row a resource action mapped onto a command type,
with what a creation answers with and an example body (shown in OpenAPI, used by
tests). Who may call a route, and on what, is the command's policy in the gateway
(`infra.gateway.policy`); the routes' docs read it from there."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from commands import models as m
from infra.gateway.policy import POLICIES, CommandPolicy

_CUSTOMER = {"name": "Umbrella Corp", "domain": "umbrella.example", "country": "GB"}
_MONEY = {"amount": "120000.00", "currency": "USD"}


@dataclass(frozen=True)
class CommandRoute:
    method: str
    path: str
    command: type[m.Command]
    location: str | None = None  # a 201 route: the created resource, formatted
    example: dict[str, Any] = field(default_factory=dict)

    @property
    def policy(self) -> CommandPolicy:
        return POLICIES[self.command.type_name]

    @property
    def created(self) -> bool:
        return self.location is not None

    @property
    def path_fields(self) -> list[str]:
        return [part[1:-1] for part in self.path.split("/") if part.startswith("{")]


_R = "/v1/registrations/{registration_id}"
_D = "/v1/deals/{deal_id}"
_P = "/v1/partners/{partner_code}"

COMMAND_ROUTES: tuple[CommandRoute, ...] = (
    CommandRoute("POST", "/v1/partners", m.OnboardPartner, "/v1/partners/{partner_code}",
                 {"partner_code": "acme", "name": "Acme Resellers", "tier": "gold",
                  "regions": ["EMEA"]}),
    CommandRoute("POST", f"{_P}/tier", m.ChangePartnerTier, example={"tier": "platinum"}),
    CommandRoute("POST", f"{_P}/suspend", m.SuspendPartner,
                 example={"reason": "contract lapsed"}),
    CommandRoute("POST", f"{_P}/reinstate", m.ReinstatePartner),
    CommandRoute("POST", "/v1/registrations", m.SubmitRegistration,
                 "/v1/registrations/{aggregate_id}",
                 {"customer": _CUSTOMER, "product_line": "Analytics", "estimated_value": _MONEY,
                  "expected_close": "2027-03-31", "notes": "CFO sponsor",
                  "contact": {"name": "Dana Buyer", "email": "dana@umbrella.example",
                              "phone": "+44 20 7946 0000"}}),
    CommandRoute("POST", f"{_R}/approve", m.ApproveRegistration, example={"note": "clean"}),
    CommandRoute("POST", f"{_R}/reject", m.RejectRegistration,
                 example={"reason": "duplicate", "note": "already registered"}),
    CommandRoute("POST", f"{_R}/request-info", m.RequestRegistrationInfo,
                 example={"note": "who is the economic buyer?"}),
    CommandRoute("POST", f"{_R}/resubmit", m.ResubmitRegistration,
                 example={"customer": _CUSTOMER, "estimated_value": _MONEY,
                          "expected_close": "2027-03-31", "notes": "buyer: the CFO"}),
    CommandRoute("POST", f"{_R}/extend", m.ExtendProtection, example={"days": 30}),
    CommandRoute("POST", f"{_R}/withdraw", m.WithdrawRegistration,
                 example={"note": "customer went elsewhere"}),
    CommandRoute("POST", f"{_R}/convert", m.ConvertRegistration, "/v1/deals/{aggregate_id}",
                 {"title": "Umbrella analytics", "owner": "sam", "region": "EMEA"}),
    CommandRoute("POST", "/v1/deals", m.OpenDeal, "/v1/deals/{aggregate_id}",
                 {"title": "Initech platform", "customer": _CUSTOMER, "product_line": "Platform",
                  "amount": _MONEY, "expected_close": "2027-06-30", "owner": "sam",
                  "region": "EMEA"}),
    CommandRoute("POST", f"{_D}/stage", m.MoveDealStage,
                 example={"stage": "proposal", "reason": "demo done"}),
    CommandRoute("POST", f"{_D}/revise", m.ReviseDeal,
                 example={"amount": _MONEY, "expected_close": "2027-09-30",
                          "reason": "scope grew"}),
    CommandRoute("POST", f"{_D}/partners", m.AttachPartner,
                 example={"partner_code": "contoso", "role": "services"}),
    CommandRoute("DELETE", f"{_D}/partners/{{partner_code}}", m.DetachPartner),
    CommandRoute("POST", f"{_D}/attribution", m.SetAttribution,
                 example={"shares": {"acme": "70", "contoso": "30"}}),
    CommandRoute("POST", f"{_D}/support", m.RequestSupport,
                 example={"kind": "technical", "note": "need a PoC engineer"}),
    CommandRoute("POST", f"{_D}/support/{{request_id}}/assign", m.AssignSupport,
                 example={"assignee": "pat"}),
    CommandRoute("POST", f"{_D}/support/{{request_id}}/resolve", m.ResolveSupport,
                 example={"resolution": "PoC delivered"}),
    CommandRoute("POST", f"{_D}/notes", m.AddDealNote,
                 example={"text": "customer asked for a discount"}),
    CommandRoute("POST", f"{_D}/won", m.MarkDealWon),
    CommandRoute("POST", f"{_D}/lost", m.MarkDealLost,
                 example={"reason": "competitor", "competitor": "Hooli"}),
    CommandRoute("POST", f"{_D}/reopen", m.ReopenDeal,
                 example={"reason": "budget found", "stage": "proposal"}),
    CommandRoute("POST", "/v1/protections/expire", m.ExpireProtections,
                 example={"limit": 1000}),
    # The subject travels in the body: an address given as one stays out of URLs and
    # the request log.
    CommandRoute("POST", "/v1/data-subjects/erase", m.EraseDataSubject,
                 example={"subject": "umbrella.example"}),
)  # fmt: skip
