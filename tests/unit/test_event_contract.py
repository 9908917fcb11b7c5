"""The contract the projector checks every record against: what the relay publishes
passes it, and what breaks the published schemas or ranges does not."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from commands.models import (
    ActorIn,
    ExpireProtections,
    MarkDealLost,
    MoveDealStage,
    ReopenDeal,
    ReviseDealAmount,
    SuspendPartner,
    WithdrawRegistration,
)
from domain.values import Actor
from projections.contract.encoding import cloudevent_headers
from projections.contract.models import Contract as EventContract
from projections.contract.models import InvalidMessage
from projections.contract.schemas import event_classes
from tests.unit.test_projections import MANAGER, SYSTEM, Story, scenario

CONTOSO = ActorIn.of(Actor.partner("contoso"))


@pytest.fixture(scope="module")
def contract() -> EventContract:
    return EventContract()


@pytest.fixture(scope="module")
def published() -> list[dict[str, Any]]:
    story = Story()
    scenario(story)
    deal = story.open_deal("initech.de", "2500.50", "EUR", stage="qualified", region="EMEA")
    story.run(MoveDealStage, deal_id=deal, stage="proposal")
    story.run(ReviseDealAmount, deal_id=deal, amount={"amount": "3000", "currency": "EUR"})
    story.run(MarkDealLost, deal_id=deal, reason="price", competitor="Rival")
    story.run(ReopenDeal, deal_id=deal, stage="qualified", reason="back on")
    withdrawn = story.submit("contoso", "hooli.com", "900")
    story.run(WithdrawRegistration, registration_id=withdrawn, actor=CONTOSO)
    story.submit("northwind", "umbrella.com", "700")
    story.later(days=200)
    story.run(ExpireProtections, actor=SYSTEM)
    story.run(SuspendPartner, partner_code="contoso", reason="audit", actor=MANAGER)
    return [m.to_json() for m in story.messages()]


def test_every_event_type_has_a_compiled_schema(contract: EventContract) -> None:
    assert len(contract.event_types) == len(event_classes())


def test_what_the_ledger_publishes_passes_with_its_headers(
    contract: EventContract, published: list[dict[str, Any]]
) -> None:
    assert len({m["event_type"] for m in published}) > 15
    for body in published:
        value = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
        message = contract.parse(value)
        assert message.to_json() == body
        assert contract.parse(value, cloudevent_headers(body)) == message


def _first(published: list[dict[str, Any]], name: str) -> dict[str, Any]:
    body = next(m for m in published if m["event_type"].split(".")[1:3] == name.split("."))
    copy: dict[str, Any] = json.loads(json.dumps(body))
    return copy


Change = Callable[[dict[str, Any]], Any]

REFUSED: list[tuple[str, str, Change, str]] = [
    (
        "deal.opened",
        "version beyond BIGINT",
        lambda b: b.update(aggregate_version=2**64),
        "aggregate_version: .*less than or equal to 9223372036854775807",
    ),
    (
        "deal.opened",
        "position beyond BIGINT",
        lambda b: b.update(position=10**20),
        "position: .*less than or equal to 9223372036854775807",
    ),
    (
        "deal.opened",
        "version zero",
        lambda b: b.update(aggregate_version=0),
        "aggregate_version: .*greater than or equal to 1",
    ),
    (
        "deal.opened",
        "unknown type",
        lambda b: b.update(event_type="dealledger.deal.exploded.v1"),
        "no published schema",
    ),
    (
        "deal.opened",
        "five-part type",
        lambda b: b.update(event_type="dealledger.deal.opened.v1.extra"),
        "unknown event type",
    ),
    (
        "deal.opened",
        "a version never published",
        lambda b: b.update(event_type="dealledger.deal.opened.v9"),
        "no published schema",
    ),
    (
        "registration.submitted",
        "a required field missing",
        lambda b: b["data"].pop("notes"),
        r"\$\.data\.notes: Field required",
    ),
    ("deal.opened", "an extra field", lambda b: b["data"].update(extra=1), "extra"),
    (
        "deal.opened",
        "an amount as a number",
        lambda b: b["data"]["amount"].update(amount=5),
        "amount",
    ),
    (
        "deal.opened",
        "a date that is no date",
        lambda b: b["data"].update(expected_close="2026-13-45"),
        "expected_close",
    ),
    (
        "deal.opened",
        "another aggregate type",
        lambda b: b.update(aggregate_type="partner"),
        "aggregate_type",
    ),
]


@pytest.mark.parametrize(
    ("name", "change", "reason"),
    [(n, c, r) for n, _, c, r in REFUSED],
    ids=[i for _, i, _, _ in REFUSED],
)
def test_a_message_off_the_contract_is_refused_with_its_reason(
    contract: EventContract, published: list[dict[str, Any]], name: str, change: Change, reason: str
) -> None:
    body = _first(published, name)
    change(body)
    with pytest.raises(InvalidMessage, match=reason):
        contract.parse(json.dumps(body).encode())


def test_only_utf8_json_objects_are_read(
    contract: EventContract, published: list[dict[str, Any]]
) -> None:
    text = json.dumps(_first(published, "deal.opened"), ensure_ascii=False)
    assert contract.parse(text.encode("utf-8"))
    for encoding in ("utf-16", "utf-16-le", "utf-32", "utf-8-sig"):
        with pytest.raises(InvalidMessage, match="not JSON"):
            contract.parse(text.encode(encoding))
    for value in (b"[" * 100_000 + b"]" * 100_000, b'{"a": NaN}', b"1" * 5000, b"[]", None):
        with pytest.raises(InvalidMessage):
            contract.parse(value)


def test_the_ce_type_header_must_name_the_type_in_the_body(
    contract: EventContract, published: list[dict[str, Any]]
) -> None:
    value = json.dumps(_first(published, "deal.opened")).encode()
    assert contract.parse(value, [("ce_type", b"dealledger.deal.opened.v1")])
    assert contract.parse(value, [("content-type", b"application/json")])  # no ce_type
    with pytest.raises(InvalidMessage, match="disagrees"):
        contract.parse(value, [("ce_type", b"dealledger.deal.won.v1")])
    with pytest.raises(InvalidMessage, match="disagrees"):
        contract.parse(
            value,
            [("ce_type", b"dealledger.deal.opened.v1"), ("ce_type", b"dealledger.deal.won.v1")],
        )
