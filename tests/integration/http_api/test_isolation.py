"""Partner isolation, route by route: a partner key can neither read nor act on
another partner's data anywhere, and what it gets back for another partner's
resource is exactly what it gets for one that does not exist."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute

from infra.http.command_table import COMMAND_ROUTES
from infra.http.query_routes import router as query_router
from infra.http.route_docs import api_routes
from tests.integration.http_api.support import (
    Api,
    close_api,
    convert,
    drop_schema,
    ok,
    onboard,
    open_api,
    pg_settings,
    submit,
)

EXAMPLES = {(r.method, r.path): r.example for r in COMMAND_ROUTES}
ROUTES: list[tuple[str, str]] = sorted(
    {(r.method, r.path) for r in COMMAND_ROUTES}
    | {(m, r.path) for r in query_router.routes if isinstance(r, APIRoute) for m in r.methods or ()}
)
PARAM = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class World:
    api: Api
    theirs: dict[str, str]  # path parameter -> globex's resource
    unknown: dict[str, str]  # path parameter -> nothing at all
    detached_deal: str  # acme was attached to it, then detached
    own_registration: str
    own_deal: str
    secrets: tuple[str, ...]  # strings only globex's data contains


@pytest.fixture(scope="module")
def world(database_url: str) -> Iterator[World]:
    settings = pg_settings(database_url)
    api = open_api(settings)
    try:
        onboard(api, "acme", "globex", "contoso")
        mine = submit(api, "acme", "acme-customer.example")["aggregate_id"]
        own_deal = convert(api, mine, "Acme deal")
        their_deal_reg = submit(api, "globex", "globex-customer.example")["aggregate_id"]
        their_deal = convert(api, their_deal_reg, "Globex deal")
        in_review = submit(api, "globex", "globex-review.example", amount="900000")
        support = ok(api.post("sales", f"/v1/deals/{their_deal}/support", {"kind": "legal"}))
        shared_reg = submit(api, "contoso", "contoso-customer.example")["aggregate_id"]
        shared = convert(api, shared_reg, "Once shared")
        ok(api.post("sales", f"/v1/deals/{shared}/partners", {"partner_code": "acme",
                                                             "role": "referral"}))  # fmt: skip
        detached = api.request("DELETE", f"/v1/deals/{shared}/partners/acme",
                                     headers=api.headers("sales"))  # fmt: skip
        ok(detached)
        yield World(
            api=api,
            theirs={
                "registration_id": in_review["aggregate_id"],
                "deal_id": their_deal,
                "partner_code": "globex",
                "request_id": support["result"]["request_id"],
            },
            unknown={
                "registration_id": str(uuid.uuid4()),
                "deal_id": str(uuid.uuid4()),
                "partner_code": "nobody",
                "request_id": "00000000",
            },
            detached_deal=shared,
            own_registration=mine,
            own_deal=own_deal,
            secrets=(
                "globex",
                "Globex deal",
                their_deal,
                their_deal_reg,
                in_review["aggregate_id"],
                "globex-customer",
                "globex-review",
            ),
        )
    finally:
        close_api(api)
        drop_schema(settings)


def _call(api: Api, method: str, template: str, ids: dict[str, str]) -> httpx.Response:
    path = PARAM.sub(lambda m: ids[m.group(1)], template)
    body: dict[str, Any] | None = None
    if method != "GET":
        body = dict(EXAMPLES.get((method, template), {}))
        if template == "/v1/registrations":
            body["partner_code"] = ids["partner_code"]  # acting for another partner
    return api.request(method, path, json=body, headers=api.headers("acme"))


def _same_answer(text: str, ids: dict[str, str]) -> str:
    for name, value in ids.items():
        text = text.replace(value, f"<{name}>")
    return text


@pytest.mark.parametrize(("method", "template"), ROUTES, ids=[f"{m} {p}" for m, p in ROUTES])
def test_a_partner_cannot_read_or_act_on_another_partners_data_on_this_route(
    world: World, method: str, template: str
) -> None:
    api = world.api
    head = api.head()
    params = PARAM.findall(template)
    theirs = {k: v for k, v in world.theirs.items() if k in params or not params}
    unknown = {k: v for k, v in world.unknown.items() if k in params or not params}

    foreign = _call(api, method, template, world.theirs)

    assert api.head() == head, "nothing may be written on another partner's behalf"
    if method == "GET" and not params:
        # A collection: whatever it lists, none of it is another partner's.
        for filters in ({}, {"partner": "globex"}):
            listed = api.get("acme", template, **filters)
            assert listed.status_code in (200, 403), listed.text
            assert not [s for s in world.secrets if s in listed.text], listed.text
        return
    assert foreign.status_code in (403, 404), foreign.text
    missing = _call(api, method, template, world.unknown)
    assert foreign.status_code == missing.status_code
    answer = _same_answer(foreign.text, theirs)
    assert answer == _same_answer(missing.text, unknown)
    assert not [s for s in world.secrets if s in answer], answer


def test_the_isolation_table_covers_every_v1_route(world: World) -> None:
    served = {
        (method, route.path)
        for route in api_routes(world.api.app)
        if route.path.startswith("/v1/")
        for method in route.methods or ()
    }
    assert served == set(ROUTES)


def test_a_partner_still_reads_and_acts_on_its_own_data(world: World) -> None:
    api = world.api
    own = {"registration_id": world.own_registration, "deal_id": world.own_deal}

    for path in (
        f"/v1/registrations/{own['registration_id']}",
        f"/v1/deals/{own['deal_id']}",
        "/v1/partners/acme",
    ):
        assert api.get("acme", path).status_code == 200, path
    note = api.post("acme", f"/v1/deals/{own['deal_id']}/notes", {"text": "ours"})
    assert note.status_code == 200, note.text
    support = api.post("acme", f"/v1/deals/{own['deal_id']}/support", {"kind": "pricing"})
    assert support.status_code == 200, support.text
    resubmit = _call(api, "POST", "/v1/registrations/{registration_id}/resubmit", own)
    assert resubmit.json()["code"] == "illegal_transition"  # seen, but in the wrong state
    listed = ok(api.get("acme", "/v1/registrations"))
    assert [r["registration_id"] for r in listed["registrations"]] == [own["registration_id"]]
    pipeline = ok(api.get("acme", "/v1/pipeline"))
    assert [d["deal_id"] for d in pipeline["deals"]] == [own["deal_id"]]
    attribution = ok(api.get("acme", "/v1/attribution"))
    assert [p["partner_code"] for p in attribution["partners"]] == ["acme"]


def test_a_partner_detached_from_a_deal_no_longer_sees_it(world: World) -> None:
    response = world.api.get("acme", f"/v1/deals/{world.detached_deal}")

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
