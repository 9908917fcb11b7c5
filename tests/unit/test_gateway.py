"""The command gateway without any transport: principals, roles, partner scope,
idempotency-key scoping, commands built from fields, and the refusals' problems."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from domain.clock import ManualClock
from domain.errors import Forbidden, IdempotencyKeyReused, NotFound
from domain.values import Actor, Role
from infra.bootstrap import Wiring
from infra.gateway.gateway import Gateway
from infra.gateway.policy import POLICIES
from infra.gateway.principals import Principal, Unauthenticated
from infra.gateway.problems import InvalidRequest, refusal
from infra.settings import Settings

MANAGER = Principal("k1", Actor.user("carol", Role.CHANNEL_MANAGER))
SELLER = Principal("k4", Actor.user("sam", Role.SALES))
AUDITOR = Principal("k5", Actor.user("ada", Role.AUDITOR))
ACME = Principal("k2", Actor.partner("acme"))
GLOBEX = Principal("k3", Actor.partner("globex"))


class Timings:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    def command(self, command_type: str, outcome: str, seconds: float) -> None:
        assert seconds >= 0
        self.seen.append((command_type, outcome))


def _submission(domain: str) -> dict[str, Any]:
    return {
        "customer": {"name": domain, "domain": domain, "country": "GB"},
        "product_line": "Analytics",
        "estimated_value": {"amount": "1000", "currency": "USD"},
        "expected_close": "2027-03-31",
    }


@pytest.fixture
def wiring(tmp_path: Path) -> Iterator[Wiring]:
    wiring = Wiring(
        Settings(sqlite_path=tmp_path / "ledger.sqlite"),
        clock=ManualClock(datetime(2026, 1, 5, 9, tzinfo=UTC)),
    )
    yield wiring
    wiring.close()


@pytest.fixture
def timings() -> Timings:
    return Timings()


@pytest.fixture
def gateway(wiring: Wiring, timings: Timings) -> Gateway:
    gateway = wiring.gateway(metrics=timings)
    for code in ("acme", "globex"):
        gateway.issue(MANAGER, "OnboardPartner", {"partner_code": code, "name": code})
    return gateway


def _deal_of(gateway: Gateway, partner: Principal, domain: str) -> str:
    submitted = gateway.issue(partner, "SubmitRegistration", _submission(domain))
    registration_id = submitted.aggregate_id
    converted = gateway.issue(
        SELLER,
        "ConvertRegistration",
        {"registration_id": registration_id, "title": domain, "owner": "sam", "region": "EMEA"},
    )
    assert converted.aggregate_id is not None
    return converted.aggregate_id


# -- partner scope ---------------------------------------------------------------------------


def test_a_partner_submits_for_itself_and_a_repeat_of_its_key_replays_the_answer(
    wiring: Wiring, gateway: Gateway
) -> None:
    first = gateway.issue(ACME, "SubmitRegistration", _submission("umbrella.example"),
                          idempotency_key="k")  # fmt: skip
    again = gateway.issue(ACME, "SubmitRegistration", _submission("umbrella.example"),
                          idempotency_key="k")  # fmt: skip

    assert first.fields["partner_code"] == "acme"
    assert (first.replayed, again.replayed) == (False, True)
    assert (again.command_id, again.position, again.aggregate_id, again.result) == (
        first.command_id, first.position, first.aggregate_id, first.result
    )  # fmt: skip
    registration = wiring.ledger().get_registration(uuid.UUID(first.aggregate_id or ""))
    assert str(registration.submitted_by) == "partner:acme"


def test_a_partner_acting_on_another_partners_registration_gets_not_found_like_a_missing_one(
    wiring: Wiring, gateway: Gateway
) -> None:
    theirs = gateway.issue(GLOBEX, "SubmitRegistration", _submission("x.example"))
    head = wiring.ledger().recorder.max_notification_id()

    with pytest.raises(NotFound) as foreign:
        gateway.issue(ACME, "WithdrawRegistration", {"registration_id": theirs.aggregate_id})
    missing_id = str(uuid.uuid4())
    with pytest.raises(NotFound) as missing:
        gateway.issue(ACME, "WithdrawRegistration", {"registration_id": missing_id})

    assert wiring.ledger().recorder.max_notification_id() == head
    assert refusal(foreign.value).code == "not_found"
    assert foreign.value.message.replace(str(theirs.aggregate_id), "?") == (
        missing.value.message.replace(missing_id, "?")
    )


def test_a_partner_not_attached_to_a_deal_gets_not_found_while_an_attached_one_may_add_notes(
    gateway: Gateway,
) -> None:
    deal_id = _deal_of(gateway, GLOBEX, "y.example")

    with pytest.raises(NotFound):
        gateway.issue(ACME, "AddDealNote", {"deal_id": deal_id, "text": "peeking"})
    noted = gateway.issue(GLOBEX, "AddDealNote", {"deal_id": deal_id, "text": "ours"})

    assert noted.aggregate_id == deal_id


# -- roles -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("principal", "command_type", "fields"),
    [
        (ACME, "OnboardPartner", {"partner_code": "x", "name": "x"}),
        (AUDITOR, "OnboardPartner", {"partner_code": "x", "name": "x"}),
        (SELLER, "SuspendPartner", {"partner_code": "acme", "reason": "no"}),
        (ACME, "ExpireProtections", {}),
        (AUDITOR, "SubmitRegistration", {**_submission("z.example"), "partner_code": "acme"}),
    ],
)
def test_a_role_outside_the_commands_policy_is_refused_before_anything_is_looked_at(
    gateway: Gateway, principal: Principal, command_type: str, fields: dict[str, Any]
) -> None:
    with pytest.raises(Forbidden) as refused:
        gateway.issue(principal, command_type, fields)

    assert refusal(refused.value).status == 403
    assert refused.value.message.startswith(
        f"{principal.actor} may not {POLICIES[command_type].doing}; it needs one of: "
    )
    assert refused.value.details == {"role": principal.role.value}


def test_a_partner_is_gated_on_the_resource_even_where_its_role_is_let_through(
    gateway: Gateway,
) -> None:
    """Role first (403 whatever the resource), then the resource (404)."""
    with pytest.raises(Forbidden):
        gateway.issue(ACME, "ApproveRegistration", {"registration_id": str(uuid.uuid4())})
    with pytest.raises(NotFound):
        gateway.issue(ACME, "ResubmitRegistration", {"registration_id": str(uuid.uuid4())})


# -- idempotency keys --------------------------------------------------------------------------


def test_idempotency_keys_are_scoped_to_the_principal(gateway: Gateway) -> None:
    acme = gateway.issue(ACME, "SubmitRegistration", _submission("a.example"), idempotency_key="1")
    globex = gateway.issue(GLOBEX, "SubmitRegistration", _submission("a.example"),
                           idempotency_key="1")  # fmt: skip

    assert (acme.command_id, globex.command_id) == ("1", "1")
    assert not globex.replayed
    assert globex.aggregate_id != acme.aggregate_id
    with pytest.raises(IdempotencyKeyReused):
        gateway.issue(ACME, "SubmitRegistration", _submission("b.example"), idempotency_key="1")


def test_a_command_without_a_key_gets_one_of_its_own(gateway: Gateway) -> None:
    one = gateway.issue(ACME, "SubmitRegistration", _submission("c.example"))
    two = gateway.issue(ACME, "SubmitRegistration", _submission("c.example"))

    assert one.command_id != two.command_id
    assert not two.replayed


# -- fields ------------------------------------------------------------------------------------


def _locations(error: InvalidRequest) -> list[tuple[Any, ...]]:
    return [tuple(e["loc"]) for e in error.errors]


@pytest.mark.parametrize(
    ("principal", "command_type", "fields", "location"),
    [
        (ACME, "SubmitRegistration", {**_submission("d.example"), "product_line": ""},
         ("payload", "product_line")),
        (ACME, "SubmitRegistration", {**_submission("d.example"), "colour": "red"},
         ("payload", "colour")),
        (ACME, "SubmitRegistration",
         {**_submission("d.example"), "customer": {"name": "D", "country": "GB"}},
         ("payload", "customer", "domain")),
        (ACME, "SubmitRegistration", {**_submission("d.example"), "actor": {"kind": "user"}},
         ("payload", "actor")),
        (ACME, "SubmitRegistration", {**_submission("d.example"), "command_id": "x"},
         ("payload", "command_id")),
        (ACME, "SubmitRegistration", _submission("a\x00.example"), ("payload",)),
        (MANAGER, "SubmitRegistration", _submission("e.example"), ("payload", "partner_code")),
        (ACME, "WithdrawRegistration", {"registration_id": "not-a-uuid"}, ("registration_id",)),
        (MANAGER, "LaunchRocket", {}, ("type",)),
    ],
)  # fmt: skip
def test_invalid_fields_are_an_invalid_request_located_in_the_callers_message(
    wiring: Wiring,
    gateway: Gateway,
    principal: Principal,
    command_type: str,
    fields: dict[str, Any],
    location: tuple[Any, ...],
) -> None:
    head = wiring.ledger().recorder.max_notification_id()

    with pytest.raises(InvalidRequest) as invalid:
        gateway.issue(principal, command_type, fields, where="payload")

    assert location in _locations(invalid.value)
    answer = refusal(invalid.value)
    assert (answer.code, answer.status) == ("invalid_input", 422)
    assert answer.errors is not None
    assert ".".join(map(str, location)) in answer.detail
    assert wiring.ledger().recorder.max_notification_id() == head


# -- principals and metrics --------------------------------------------------------------------


def test_keys_are_authenticated_by_the_gateway_and_a_revoked_one_is_refused(
    wiring: Wiring, gateway: Gateway
) -> None:
    keys = wiring.authenticator().keys
    key = keys.create(Actor.partner("acme"))
    key_id = key.split("_")[1]

    assert gateway.authenticate(key).actor == Actor.partner("acme")
    assert gateway.principal_for_key_id(key_id).actor == Actor.partner("acme")
    keys.revoke(key_id)
    with pytest.raises(Unauthenticated) as revoked:
        gateway.principal_for_key_id(key_id)
    with pytest.raises(Unauthenticated) as missing:
        gateway.authenticate(None)

    assert (revoked.value.reason, missing.value.reason) == ("revoked", "missing")
    assert (refusal(revoked.value).code, refusal(revoked.value).status) == ("unauthenticated", 401)


def test_each_executed_command_is_timed_by_outcome(gateway: Gateway, timings: Timings) -> None:
    gateway.issue(ACME, "SubmitRegistration", _submission("f.example"), idempotency_key="f")
    gateway.issue(ACME, "SubmitRegistration", _submission("f.example"), idempotency_key="f")
    with pytest.raises(Forbidden):
        gateway.issue(ACME, "OnboardPartner", {"partner_code": "x", "name": "x"})
    with pytest.raises(Exception, match="acme"):
        gateway.issue(MANAGER, "OnboardPartner", {"partner_code": "acme", "name": "again"})

    assert timings.seen[2:] == [
        ("SubmitRegistration", "accepted"),
        ("SubmitRegistration", "replayed"),
        ("OnboardPartner", "illegal_transition"),
    ]
