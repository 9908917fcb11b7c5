"""Every class of error answers an RFC 9457 problem with a stable code."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from infra.http import create_app
from infra.http.route_docs import api_routes
from infra.settings import Settings
from tests.integration.http_api.support import CUSTOMER, Api, convert, ok, onboard, submit

UNKNOWN = "00000000-0000-4000-8000-000000000000"
Call = Callable[[Api], httpx.Response]


def _registration(api: Api, amount: str = "1000") -> str:
    onboard(api, "acme")
    registration: str = submit(api, "acme", "umbrella.example", amount=amount)["aggregate_id"]
    return registration


def _bad_json(api: Api) -> httpx.Response:
    return api.request(
        "POST",
        "/v1/registrations",
        content=b'{"customer": ',
        headers={**api.headers("acme"), "Content-Type": "application/json"},
    )


def _long_key(api: Api) -> httpx.Response:
    return api.post("manager", "/v1/partners", {"partner_code": "x", "name": "X"}, key="k" * 101)


def _no_key(api: Api) -> httpx.Response:
    return api.request("GET", "/v1/pipeline")


def _malformed_key(api: Api) -> httpx.Response:
    return api.request("GET", "/v1/pipeline", headers={"Authorization": "Bearer not-a-key"})


def _unknown_key(api: Api) -> httpx.Response:
    return api.request("GET", "/v1/pipeline", headers={"X-API-Key": "dl_0123456789ab_" + "x" * 43})


def _wrong_secret(api: Api) -> httpx.Response:
    key_id = api.keys["admin"].split("_")[1]
    return api.request("GET", "/v1/pipeline", headers={"X-API-Key": f"dl_{key_id}_" + "x" * 43})


def _revoked_key(api: Api) -> httpx.Response:
    api.context.auth.keys.revoke(api.keys["auditor"].split("_")[1])
    return api.get("auditor", "/v1/pipeline")


def _partner_approves(api: Api) -> httpx.Response:
    registration = _registration(api, amount="900000")
    return api.post("acme", f"/v1/registrations/{registration}/approve", {})


def _auditor_commands(api: Api) -> httpx.Response:
    return api.post("auditor", "/v1/partners", {"partner_code": "x", "name": "X"})


def _unknown_deal(api: Api) -> httpx.Response:
    return api.get("sales", f"/v1/deals/{UNKNOWN}")


def _unknown_route(api: Api) -> httpx.Response:
    return api.get("sales", "/v1/nothing-here")


def _wrong_method(api: Api) -> httpx.Response:
    return api.request("PUT", "/v1/pipeline", headers=api.headers("sales"))


def _approved_twice(api: Api) -> httpx.Response:
    registration = _registration(api)
    return api.post("manager", f"/v1/registrations/{registration}/approve", {})


def _direct_deal_on_protected_key(api: Api) -> httpx.Response:
    _registration(api)
    return api.post("sales", "/v1/deals", {
        "title": "Poaching", "customer": CUSTOMER | {"domain": "umbrella.example"},
        "product_line": "Analytics", "amount": {"amount": "5", "currency": "USD"},
        "expected_close": "2027-01-31", "owner": "sam",
    })  # fmt: skip


def _suspended_partner_submits(api: Api) -> httpx.Response:
    onboard(api, "acme")
    ok(api.post("manager", "/v1/partners/acme/suspend", {"reason": "audit"}))
    return api.post("acme", "/v1/registrations", {
        "customer": CUSTOMER, "product_line": "Analytics",
        "estimated_value": {"amount": "5", "currency": "USD"}, "expected_close": "2027-01-31",
    })  # fmt: skip


def _protected_partner_detached(api: Api) -> httpx.Response:
    deal = convert(api, _registration(api))
    return api.request("DELETE", f"/v1/deals/{deal}/partners/acme", headers=api.headers("sales"))


def _invalid_values(api: Api) -> httpx.Response:
    onboard(api, "acme")
    return api.post("acme", "/v1/registrations", {
        "customer": CUSTOMER | {"country": "gb"}, "product_line": "",
        "estimated_value": {"amount": "-1", "currency": "XXX1"}, "expected_close": "soon",
    })  # fmt: skip


def _nul_in_body(api: Api) -> httpx.Response:
    return api.post("manager", "/v1/partners", {"partner_code": "acme", "name": "Ac\u0000me"})


def _nul_in_filter(api: Api) -> httpx.Response:
    return api.get("sales", "/v1/pipeline", stage="lead\x00")


def _invalid_attribution(api: Api) -> httpx.Response:
    deal = convert(api, _registration(api))
    return api.post("sales", f"/v1/deals/{deal}/attribution", {"shares": {"globex": "100"}})


def _behind(api: Api) -> httpx.Response:
    api.context.read_models.stop_feeding(for_good=True)  # read models nobody feeds
    onboard(api, "acme")
    return api.get("sales", "/v1/pipeline", min_position=api.head())


def _never_written(api: Api) -> httpx.Response:
    return api.get("sales", "/v1/pipeline", min_position=10**9)


def _internal_error(api: Api) -> httpx.Response:
    def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret internals /etc/passwd")

    api.context.read_models.query = boom  # type: ignore[method-assign]
    return api.get("sales", "/v1/pipeline")


CASES: list[tuple[str, Call, int, str]] = [
    ("body that is not JSON", _bad_json, 400, "malformed_request"),
    ("Idempotency-Key over 100 characters", _long_key, 400, "malformed_request"),
    ("no API key", _no_key, 401, "unauthenticated"),
    ("a malformed API key", _malformed_key, 401, "unauthenticated"),
    ("an unknown API key", _unknown_key, 401, "unauthenticated"),
    ("a known key id with the wrong secret", _wrong_secret, 401, "unauthenticated"),
    ("a revoked API key", _revoked_key, 401, "unauthenticated"),
    ("a partner approving", _partner_approves, 403, "forbidden"),
    ("an auditor issuing a command", _auditor_commands, 403, "forbidden"),
    ("an unknown deal", _unknown_deal, 404, "not_found"),
    ("an unknown route", _unknown_route, 404, "not_found"),
    ("a method the route lacks", _wrong_method, 405, "method_not_allowed"),
    ("approving an approved registration", _approved_twice, 409, "illegal_transition"),
    ("a direct deal on a protected key", _direct_deal_on_protected_key, 409, "channel_conflict"),
    ("a suspended partner submitting", _suspended_partner_submits, 409, "partner_suspended"),
    ("detaching the protected partner", _protected_partner_detached, 409, "protected_partner"),
    ("invalid values", _invalid_values, 422, "invalid_input"),
    (
        "a NUL character in a body (PostgreSQL text cannot hold it)",
        _nul_in_body,
        422,
        "invalid_input",
    ),
    ("a NUL character in a filter", _nul_in_filter, 422, "invalid_input"),
    ("shares for partners not attached", _invalid_attribution, 422, "invalid_attribution"),
    ("a min_position never written", _never_written, 422, "invalid_input"),
    ("a read model behind min_position", _behind, 503, "read_model_behind"),
    ("an unexpected exception", _internal_error, 500, "internal_error"),
]


@pytest.mark.parametrize(
    ("call", "status", "code"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_each_error_class_answers_a_problem_with_its_status_and_stable_code(
    api: Api, call: Call, status: int, code: str
) -> None:
    response = call(api)

    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"] == f"/problems/{code}"
    assert (problem["status"], problem["code"]) == (status, code)
    assert problem["title"]
    assert problem["detail"]
    assert problem["instance"] == response.request.url.path
    assert "Traceback" not in response.text
    assert "/etc/passwd" not in response.text
    documented = api.request("GET", problem["type"])
    assert documented.json()["status"] == status


def test_validation_problems_list_every_invalid_value(api: Api) -> None:
    problem = _invalid_values(api).json()

    locations = {tuple(e["loc"]) for e in problem["errors"]}
    assert {
        ("body", "customer", "country"),
        ("body", "product_line"),
        ("body", "estimated_value", "amount"),
        ("body", "estimated_value", "currency"),
        ("body", "expected_close"),
    } <= locations
    assert all(set(e) == {"loc", "message", "type"} for e in problem["errors"])


def test_an_unauthenticated_request_is_challenged_for_a_bearer_key(api: Api) -> None:
    assert _no_key(api).headers["WWW-Authenticate"] == 'Bearer realm="dealledger"'
    assert 'error="invalid_token"' in _unknown_key(api).headers["WWW-Authenticate"]


def test_an_unreachable_database_answers_503_with_retry_after_and_liveness_stays_up() -> None:
    key = "dl_bootstrap01_" + "s" * 40
    settings = Settings(
        database_url="postgresql://dealledger:dealledger@127.0.0.1:1/nowhere",
        api_keys={key: "admin:ops"},
    )
    app = create_app(settings)
    with TestClient(app, raise_server_exceptions=False) as client:
        command = client.post(
            "/v1/partners", json={"partner_code": "x", "name": "X"}, headers={"X-API-Key": key}
        )
        query = client.get(f"/v1/deals/{UNKNOWN}", headers={"X-API-Key": key})
        ready = client.get("/readyz")
        alive = client.get("/healthz")

    for response in (command, query):
        assert response.status_code == 503, response.text
        assert response.headers["Retry-After"].isdigit()
        assert response.json()["code"] == "database_unavailable"
        assert response.headers["content-type"] == "application/problem+json"
    assert ready.status_code == 503
    assert ready.json()["checks"]["database"].startswith("unavailable")
    assert alive.status_code == 200


def _allow(response: httpx.Response) -> set[str]:
    return {m.strip() for m in response.headers["Allow"].split(",")}


def test_a_405_allows_every_method_served_at_the_path(api: Api) -> None:
    registrations = api.request("PUT", "/v1/registrations", headers=api.headers("admin"))
    deal = api.request("PUT", f"/v1/deals/{UNKNOWN}", headers=api.headers("admin"))

    assert (registrations.status_code, deal.status_code) == (405, 405)
    assert _allow(registrations) == {"GET", "POST"}
    assert _allow(deal) == {"GET"}


def test_every_path_s_405_allows_exactly_the_methods_its_routes_serve(api: Api) -> None:
    served: dict[str, set[str]] = {}
    for route in api_routes(api.app):
        served.setdefault(route.path, set()).update(route.methods or ())

    for path, methods in served.items():
        concrete = re.sub(r"\{[^}]+\}", UNKNOWN, path)
        response = api.request("PATCH", concrete, headers=api.headers("admin"))

        assert response.status_code == 405, path
        assert _allow(response) == methods, path
