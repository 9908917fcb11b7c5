"""An open deal's expected close date is never set before today (the clock's date)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx

from tests.integration.http_api.support import CUSTOMER, Api, ok, onboard

# The API clock starts on 2026-01-05.
TODAY = "2026-01-05"
YESTERDAY = "2026-01-04"


def _deal(**overrides: Any) -> dict[str, Any]:
    return {
        "title": "Initech platform",
        "customer": CUSTOMER,
        "product_line": "Platform",
        "amount": {"amount": "1000", "currency": "USD"},
        "expected_close": "2026-06-30",
        "owner": "sam",
        **overrides,
    }


def _refused_for_the_close_date(response: httpx.Response) -> None:
    assert response.status_code == 422, response.text
    problem = response.json()
    assert (problem["code"], problem["field"]) == ("invalid_input", "expected_close")
    assert "expected_close" in problem["detail"] or "close date" in problem["detail"]


def _show(api: Api, deal_id: str) -> dict[str, Any]:
    deal: dict[str, Any] = ok(api.get("sales", f"/v1/deals/{deal_id}"))["deal"]
    return deal


def test_a_deal_is_not_opened_with_a_close_date_in_the_past(api: Api) -> None:
    head = api.head()

    in_2019 = api.post("sales", "/v1/deals", _deal(expected_close="2019-06-30"))
    yesterday = api.post("sales", "/v1/deals", _deal(expected_close=YESTERDAY))
    today = api.post("sales", "/v1/deals", _deal(expected_close=TODAY))

    _refused_for_the_close_date(in_2019)
    _refused_for_the_close_date(yesterday)
    assert ok(today, 201)["aggregate_id"]
    assert api.head() > head


def test_a_deal_is_not_revised_to_a_close_date_in_the_past(api: Api) -> None:
    deal_id = ok(api.post("sales", "/v1/deals", _deal()), 201)["aggregate_id"]
    head = api.head()

    revise = f"/v1/deals/{deal_id}/revise"
    in_2019 = api.post("sales", revise, {"expected_close": "2019-06-30"})
    with_amount = api.post(
        "sales", revise, {"amount": {"amount": "2000", "currency": "USD"},
                          "expected_close": YESTERDAY}
    )  # fmt: skip

    _refused_for_the_close_date(in_2019)
    _refused_for_the_close_date(with_amount)
    assert api.head() == head
    shown = _show(api, deal_id)
    assert (shown["expected_close"], shown["amount"]["amount"]) == ("2026-06-30", "1000")


def test_converting_a_registration_whose_close_date_passed_needs_a_new_date(api: Api) -> None:
    onboard(api, "acme")
    body = {
        "customer": CUSTOMER,
        "product_line": "Analytics",
        "estimated_value": {"amount": "1000", "currency": "USD"},
        "expected_close": "2026-02-01",
    }
    registration = ok(api.post("acme", "/v1/registrations", body), 201)["aggregate_id"]
    api.clock.advance(timedelta(days=40))  # 2026-02-14: protected, but the date has passed
    convert = f"/v1/registrations/{registration}/convert"
    deal = {"title": "Umbrella analytics", "owner": "sam"}

    without_date = api.post("sales", convert, deal)
    past_date = api.post("sales", convert, {**deal, "expected_close": "2026-02-13"})
    converted = ok(api.post("sales", convert, {**deal, "expected_close": "2026-05-31"}), 201)

    _refused_for_the_close_date(without_date)
    assert "2026-02-01" in without_date.json()["detail"]
    _refused_for_the_close_date(past_date)
    assert _show(api, converted["aggregate_id"])["expected_close"] == "2026-05-31"


def test_a_registration_converts_with_its_own_date_while_that_date_is_ahead(api: Api) -> None:
    onboard(api, "acme")
    body = {
        "customer": CUSTOMER,
        "product_line": "Analytics",
        "estimated_value": {"amount": "1000", "currency": "USD"},
        "expected_close": "2026-02-01",
    }
    registration = ok(api.post("acme", "/v1/registrations", body), 201)["aggregate_id"]

    converted = ok(
        api.post("sales", f"/v1/registrations/{registration}/convert",
                 {"title": "Umbrella analytics", "owner": "sam"}),
        201,
    )  # fmt: skip

    assert _show(api, converted["aggregate_id"])["expected_close"] == "2026-02-01"


def test_reopening_a_deal_whose_close_date_passed_needs_a_new_date(api: Api) -> None:
    deal_id = ok(api.post("sales", "/v1/deals", _deal(expected_close="2026-02-01")), 201)[
        "aggregate_id"
    ]
    ok(api.post("sales", f"/v1/deals/{deal_id}/lost", {"reason": "timing"}))
    api.clock.advance(timedelta(days=60))
    reopen = f"/v1/deals/{deal_id}/reopen"

    without_date = api.post("sales", reopen, {"reason": "budget found"})
    past_date = api.post(
        "sales", reopen, {"reason": "budget found", "expected_close": "2026-03-01"}
    )
    reopened = ok(
        api.post("sales", reopen, {"reason": "budget found", "expected_close": "2026-09-30"})
    )

    _refused_for_the_close_date(without_date)
    _refused_for_the_close_date(past_date)
    assert reopened["result"]["status"] == "open"
    shown = _show(api, deal_id)
    assert (shown["status"], shown["expected_close"]) == ("open", "2026-09-30")
