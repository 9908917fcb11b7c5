"""Amounts are plain positive decimals and dates are YYYY-MM-DD, on every command."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.integration.http_api.support import CUSTOMER, Api, ok, onboard

LENIENT_AMOUNTS = [
    "\uff11\uff10\uff10\uff10",
    "1_000",
    " 1 ",
    "+5",
    "-5",
    "1e3",
    "0",
    "0.000",
    0,
    -1,
]
NOT_DATES = [
    "2027-03-31T00:00:00",
    "2027-03-31T00:00:00Z",
    "2027-03-31 00:00",
    "20270331",
    "2027-3-31",
    "\uff12\uff10\uff12\uff17-03-31",
    1798675200,
]


def _registration(**overrides: Any) -> dict[str, Any]:
    return {
        "customer": CUSTOMER,
        "product_line": "Analytics",
        "estimated_value": {"amount": "1000", "currency": "USD"},
        "expected_close": "2027-03-31",
        **overrides,
    }


def _deal(**overrides: Any) -> dict[str, Any]:
    return {
        "title": "Initech platform",
        "customer": {**CUSTOMER, "domain": "initech.example"},
        "product_line": "Platform",
        "amount": {"amount": "1000", "currency": "USD"},
        "expected_close": "2027-06-30",
        "owner": "sam",
        **overrides,
    }


def _refused_at(response: httpx.Response, *loc: str) -> None:
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["code"] == "invalid_input"
    assert ["body", *loc] in [e["loc"] for e in problem["errors"]], problem["errors"]


def _raw(api: Api, who: str, path: str, text: str) -> httpx.Response:
    headers = {**api.headers(who), "Content-Type": "application/json"}
    return api.request("POST", path, content=text.encode(), headers=headers)


@pytest.mark.parametrize("amount", LENIENT_AMOUNTS, ids=repr)
def test_an_amount_that_is_not_plain_positive_decimal_text_is_refused(
    api: Api, amount: object
) -> None:
    onboard(api, "acme")
    head = api.head()
    money = {"amount": amount, "currency": "USD"}

    registration = api.post("acme", "/v1/registrations", _registration(estimated_value=money))
    deal = api.post("sales", "/v1/deals", _deal(amount=money))

    _refused_at(registration, "estimated_value", "amount")
    _refused_at(deal, "amount", "amount")
    assert api.head() == head


def test_a_json_number_too_small_to_represent_is_refused_not_read_as_zero(api: Api) -> None:
    onboard(api, "acme")
    head = api.head()
    body = json.dumps(_registration(estimated_value={"amount": "AMOUNT", "currency": "USD"}))

    refused = _raw(api, "acme", "/v1/registrations", body.replace('"AMOUNT"', "1e-400"))

    _refused_at(refused, "estimated_value", "amount")
    assert api.head() == head


def test_plain_decimal_text_and_json_numbers_in_range_are_accepted(api: Api) -> None:
    onboard(api, "acme")
    body = json.dumps(_registration(estimated_value={"amount": "AMOUNT", "currency": "USD"}))

    as_text = ok(
        api.post("sales", "/v1/deals", _deal(amount={"amount": "0.5", "currency": "USD"})), 201
    )
    as_number = ok(_raw(api, "acme", "/v1/registrations", body.replace('"AMOUNT"', "1250.75")), 201)

    assert as_text["result"]["amount"] == {"amount": "0.5", "currency": "USD"}
    registration = ok(api.get("acme", f"/v1/registrations/{as_number['aggregate_id']}"))
    assert registration["registration"]["estimated_value"]["amount"] == "1250.75"


@pytest.mark.parametrize("when", NOT_DATES, ids=repr)
def test_an_expected_close_that_is_not_a_plain_date_is_refused(api: Api, when: object) -> None:
    onboard(api, "acme")
    head = api.head()

    registration = api.post("acme", "/v1/registrations", _registration(expected_close=when))
    deal = api.post("sales", "/v1/deals", _deal(expected_close=when))

    _refused_at(registration, "expected_close")
    _refused_at(deal, "expected_close")
    assert api.head() == head


def test_a_revision_and_a_resubmission_get_the_same_checks(api: Api) -> None:
    onboard(api, "acme")
    deal = ok(api.post("sales", "/v1/deals", _deal()), 201)["aggregate_id"]
    review = ok(
        api.post("acme", "/v1/registrations",
                 _registration(estimated_value={"amount": "900000", "currency": "USD"})),
        201,
    )["aggregate_id"]  # fmt: skip
    ok(api.post("manager", f"/v1/registrations/{review}/request-info", {"note": "who buys?"}))
    head = api.head()

    revise = f"/v1/deals/{deal}/revise"
    _refused_at(api.post("sales", revise, {"amount": {"amount": "+5", "currency": "USD"}}),
                "amount", "amount")  # fmt: skip
    _refused_at(api.post("sales", revise, {"expected_close": "2027-09-30T00:00:00"}),
                "expected_close")  # fmt: skip
    resubmission = _registration(estimated_value={"amount": "0", "currency": "USD"})
    resubmission.pop("product_line")
    _refused_at(api.post("acme", f"/v1/registrations/{review}/resubmit", resubmission),
                "estimated_value", "amount")  # fmt: skip
    assert api.head() == head
