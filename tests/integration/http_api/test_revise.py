"""`POST /v1/deals/{id}/revise` is one atomic command: all of it applies, or nothing."""

from __future__ import annotations

import uuid
from typing import Any

from domain.deal import Deal
from tests.integration.http_api.support import CUSTOMER, Api, ok


def _open_deal(api: Api) -> str:
    body = {
        "title": "Initech platform",
        "customer": CUSTOMER,
        "product_line": "Platform",
        "amount": {"amount": "1000", "currency": "USD"},
        "expected_close": "2027-06-30",
        "owner": "sam",
    }
    deal_id: str = ok(api.post("sales", "/v1/deals", body), 201)["aggregate_id"]
    return deal_id


def _deal_events(api: Api, deal_id: str) -> list[Any]:
    return list(api.context.ledger().events.get(uuid.UUID(deal_id)))


def test_a_revision_whose_close_date_is_refused_leaves_the_amount_unrevised(api: Api) -> None:
    deal_id = _open_deal(api)
    before = _deal_events(api, deal_id)
    head = api.head()

    refused = api.post(
        "sales",
        f"/v1/deals/{deal_id}/revise",
        {"amount": {"amount": "2500", "currency": "USD"}, "expected_close": "2027-06-30"},
    )

    assert (refused.status_code, refused.json()["code"]) == (409, "illegal_transition")
    assert "close date is unchanged" in refused.json()["detail"]
    assert _deal_events(api, deal_id) == before
    assert api.head() == head
    shown = ok(api.get("sales", f"/v1/deals/{deal_id}"))["deal"]
    assert shown["amount"] == {"amount": "1000", "currency": "USD"}


def test_a_revision_of_both_is_one_command_writing_both_events_at_once(api: Api) -> None:
    deal_id = _open_deal(api)

    revised = ok(
        api.post(
            "sales",
            f"/v1/deals/{deal_id}/revise",
            {"amount": {"amount": "2500", "currency": "USD"}, "expected_close": "2027-09-30",
             "reason": "scope grew"},
            key="rev-1",
        )
    )  # fmt: skip
    again = ok(
        api.post(
            "sales",
            f"/v1/deals/{deal_id}/revise",
            {"amount": {"amount": "2500", "currency": "USD"}, "expected_close": "2027-09-30",
             "reason": "scope grew"},
            key="rev-1",
        )
    )  # fmt: skip

    assert revised["command_type"] == "ReviseDeal"
    assert again == revised
    events = _deal_events(api, deal_id)
    assert [type(e) for e in events[-2:]] == [Deal.AmountRevised, Deal.CloseDateRevised]
    command_ids = {e.cause.command_id for e in events[-2:]}
    assert command_ids == {"user:sam/rev-1"}


def test_a_revision_naming_neither_field_is_invalid_input(api: Api) -> None:
    deal_id = _open_deal(api)

    refused = api.post("sales", f"/v1/deals/{deal_id}/revise", {"reason": "nothing"})

    assert (refused.status_code, refused.json()["code"]) == (422, "invalid_input")
