"""Commands issued for a principal without HTTP, as the Kafka command consumer does."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from commands.ledger import DealLedger
from domain.clock import ManualClock
from domain.errors import Forbidden, NotFound
from domain.values import Actor, Role
from infra.bootstrap import build_ledger
from infra.gateway.dispatch import dispatch, route_for
from infra.gateway.principals import Principal
from infra.gateway.problems import InvalidRequest
from infra.settings import Settings

MANAGER = Principal("k1", Actor.user("carol", Role.CHANNEL_MANAGER))
ACME = Principal("k2", Actor.partner("acme"))
GLOBEX = Principal("k3", Actor.partner("globex"))


def _submission(domain: str) -> dict[str, object]:
    return {
        "customer": {"name": domain, "domain": domain, "country": "GB"},
        "product_line": "Analytics",
        "estimated_value": {"amount": "1000", "currency": "USD"},
        "expected_close": "2027-03-31",
    }


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[DealLedger]:
    built = build_ledger(
        Settings(sqlite_path=tmp_path / "ledger.sqlite"),
        clock=ManualClock(datetime(2026, 1, 5, 9, tzinfo=UTC)),
    )
    for code in ("acme", "globex"):
        dispatch(built, route_for("OnboardPartner"), MANAGER, {"partner_code": code, "name": code})
    yield built
    built.close()


def test_a_partner_submits_for_itself_and_a_repeat_of_its_key_replays_the_answer(
    ledger: DealLedger,
) -> None:
    route = route_for("SubmitRegistration")

    first = dispatch(ledger, route, ACME, _submission("umbrella.example"), idempotency_key="k")
    again = dispatch(ledger, route, ACME, _submission("umbrella.example"), idempotency_key="k")

    assert first.fields["partner_code"] == "acme"
    assert (first.replayed, again.replayed) == (False, True)
    assert again.accepted == first.accepted
    registration = ledger.get_registration(uuid.UUID(first.accepted.aggregate_id or ""))
    assert str(registration.submitted_by) == "partner:acme"


def test_another_partners_registration_is_answered_like_a_missing_one(ledger: DealLedger) -> None:
    theirs = dispatch(ledger, route_for("SubmitRegistration"), GLOBEX, _submission("x.example"))
    withdraw = route_for("WithdrawRegistration")

    with pytest.raises(NotFound) as foreign:
        dispatch(ledger, withdraw, ACME, {"registration_id": theirs.accepted.aggregate_id})
    missing_id = str(uuid.uuid4())
    with pytest.raises(NotFound) as missing:
        dispatch(ledger, withdraw, ACME, {"registration_id": missing_id})

    assert foreign.value.message.replace(str(theirs.accepted.aggregate_id), "?") == (
        missing.value.message.replace(missing_id, "?")
    )


def test_roles_are_gated_and_bad_payloads_are_invalid_requests(ledger: DealLedger) -> None:
    with pytest.raises(Forbidden):
        dispatch(ledger, route_for("OnboardPartner"), ACME, {"partner_code": "x", "name": "x"})
    with pytest.raises(InvalidRequest) as unknown:
        route_for("LaunchRocket")
    with pytest.raises(InvalidRequest) as nul:
        dispatch(ledger, route_for("SubmitRegistration"), ACME, _submission("a\x00.example"),
                 where="payload")  # fmt: skip
    impostor = {**_submission("y.example"), "actor": MANAGER.actor_in().model_dump()}
    with pytest.raises(InvalidRequest) as actor:
        dispatch(ledger, route_for("SubmitRegistration"), ACME, impostor, where="payload")

    assert unknown.value.errors[0]["loc"] == ("type",)
    assert nul.value.errors[0]["loc"] == ("payload",)
    assert ("payload", "actor") in [e["loc"] for e in actor.value.errors]
