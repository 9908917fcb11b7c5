"""Every route of the HTTP API, driven through an HTTP client against PostgreSQL."""

from __future__ import annotations

import re
from datetime import timedelta

import httpx
from prometheus_client.parser import text_string_to_metric_families

from infra.http.route_docs import api_routes
from tests.integration.http_api.support import (
    CUSTOMER,
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


def _served_routes(api: Api) -> set[tuple[str, str]]:
    """(method, route template) of every request answered 2xx, read from /metrics."""
    text = api.request("GET", "/metrics").text
    found = set()
    for method, route, status in re.findall(
        r'dealledger_http_requests_total\{method="(\w+)",route="([^"]+)",status="(\d+)"\}', text
    ):
        if status.startswith("2"):
            found.add((method, route))
    return found


def test_every_route_answers_a_full_partner_programme_story(api: Api) -> None:
    # Partners: onboard, change tier, suspend and reinstate.
    onboard(api, "acme", "globex", "contoso")
    ok(api.post("manager", "/v1/partners/contoso/tier", {"tier": "gold"}))
    ok(api.post("manager", "/v1/partners/globex/suspend", {"reason": "audit"}))
    ok(api.post("manager", "/v1/partners/globex/reinstate"))
    assert ok(api.get("acme", "/v1/partners/acme"))["partner"]["tier"] == "registered"

    # Registrations: auto-approved; reviewed with a request for information; rejected.
    acme_reg = submit(api, "acme", "umbrella.example")
    assert acme_reg["result"]["status"] == "approved"
    big = submit(api, "globex", "initech.example", amount="900000")
    big_id = big["aggregate_id"]
    assert big["result"]["review_reasons"] == ["above_auto_approval_limit"]
    ok(api.post("manager", f"/v1/registrations/{big_id}/request-info", {"note": "who buys?"}))
    resubmitted = {
        "customer": {**CUSTOMER, "domain": "initech.example", "name": "Initech"},
        "estimated_value": {"amount": "800000", "currency": "USD"},
        "expected_close": "2027-04-30",
        "notes": "the CFO buys",
    }
    ok(api.post("globex", f"/v1/registrations/{big_id}/resubmit", resubmitted))
    ok(api.post("manager", f"/v1/registrations/{big_id}/approve", {"note": "fine"}))
    ok(api.post("manager", f"/v1/registrations/{big_id}/extend", {"days": 30}))
    dup = submit(api, "contoso", "initech.example")["aggregate_id"]
    rejected = {"reason": "duplicate", "note": "globex was first"}
    ok(api.post("manager", f"/v1/registrations/{dup}/reject", rejected))
    gone = submit(api, "contoso", "hooli.example")["aggregate_id"]
    ok(api.post("contoso", f"/v1/registrations/{gone}/withdraw", {"note": "lost interest"}))

    # Deals: converted and direct; every deal action.
    deal = convert(api, acme_reg["aggregate_id"], "Umbrella analytics")
    direct = {
        "title": "Wonka direct",
        "customer": {**CUSTOMER, "domain": "wonka.example", "name": "Wonka"},
        "product_line": "Platform",
        "amount": {"amount": "50000", "currency": "EUR"},
        "expected_close": "2027-06-30",
        "owner": "sam",
    }
    ok(api.post("sales", "/v1/deals", direct), 201)
    d = f"/v1/deals/{deal}"
    ok(api.post("sales", f"{d}/stage", {"stage": "qualified", "reason": "budget confirmed"}))
    revised = ok(
        api.post(
            "sales",
            f"{d}/revise",
            {"amount": {"amount": "2000", "currency": "USD"}, "expected_close": "2027-05-31"},
        )
    )
    assert revised["command_type"] == "ReviseDeal"
    ok(api.post("sales", f"{d}/partners", {"partner_code": "contoso", "role": "services"}))
    ok(api.post("sales", f"{d}/attribution", {"shares": {"acme": "70", "contoso": "30"}}))
    support = ok(api.post("acme", f"{d}/support", {"kind": "technical", "note": "PoC"}))
    request_id = support["result"]["request_id"]
    ok(api.post("sales", f"{d}/support/{request_id}/assign", {"assignee": "pat"}))
    ok(api.post("sales", f"{d}/support/{request_id}/resolve", {"resolution": "done"}))
    ok(api.post("acme", f"{d}/notes", {"text": "customer wants a discount"}))
    detached = api.request("DELETE", f"{d}/partners/contoso", headers=api.headers("sales"))
    assert ok(detached)["result"]["shares"] == {"acme": "100"}
    won = ok(api.post("sales", f"{d}/won"))
    assert won["result"]["attributed"] == {"acme": {"amount": "2000.00", "currency": "USD"}}
    ok(api.post("sales", f"{d}/reopen", {"reason": "clawback", "stage": "proposal"}))
    lost = ok(api.post("sales", f"{d}/lost", {"reason": "competitor", "competitor": "Hooli"}))

    # Time passes; a manager sweeps lapsed protections.
    api.clock.advance(timedelta(days=200))
    swept = ok(api.post("manager", "/v1/protections/expire", {"limit": 100}))
    assert big_id in swept["result"]["expired"]

    # Queries, each waiting for the last write.
    head = swept["position"]
    got = ok(api.get("acme", f"/v1/registrations/{acme_reg['aggregate_id']}", min_position=head))
    assert got["registration"]["status"] == "converted"
    assert got["freshness"] == {"source": "ledger", "position": head}
    listed = ok(api.get("manager", "/v1/registrations", status="rejected", min_position=head))
    assert [r["registration_id"] for r in listed["registrations"]] == [dup]
    assert listed["freshness"]["position"] >= head
    shown = ok(api.get("acme", d))["deal"]
    assert (shown["status"], shown["loss_reason"], shown["competitor"]) == (
        "lost",
        "competitor",
        "Hooli",
    )
    assert shown["support"][0]["status"] == "resolved"
    assert shown["notes"] == ["customer wants a discount"]
    history = ok(api.get("auditor", f"{d}/history"))
    assert [e["event_type"] for e in history["entries"]][:2] == [
        "dealledger.registration.submitted.v1",
        "dealledger.registration.approved.v1",
    ]
    assert history["state"]["deal"]["status"] == "lost"
    as_of_version = ok(api.get("auditor", f"{d}/history", version=2))
    assert as_of_version["state"]["deal_version"] == 2
    assert as_of_version["state"]["deal"]["stage"] == "qualified"
    assert all(e["position"] < lost["position"] for e in as_of_version["entries"])
    verified = ok(api.get("auditor", f"{d}/verify"))
    assert verified["ok"] is True
    assert verified["streams"] == 3
    # The deal's events are leaves of the ledger tree (of them and every other event).
    assert verified["tree_size"] >= verified["events"]
    assert len(verified["root"]) == 64
    assert verified["anchored_to"] is None  # no checkpoint file is configured here
    # The customer asks to be forgotten: only a manager may erase, and then its notes
    # read [erased] in the deal and its history, while every proof still holds.
    forget = "/v1/data-subjects/erase"
    assert api.post("acme", forget, {"subject": "umbrella.example"}).status_code == 403
    assert api.post("sales", forget, {"subject": "umbrella.example"}).status_code == 403
    erased = ok(api.post("manager", forget, {"subject": "buyer@umbrella.example"}))
    assert erased["result"]["subject"] == "umbrella.example"
    assert len(erased["result"]["keys"]) >= 2  # the registration's and the deal's
    shown = ok(api.get("acme", d))["deal"]
    assert shown["notes"] == ["[erased]"]
    assert (shown["support"][0]["note"], shown["support"][0]["resolution"]) == (
        "[erased]",
        "[erased]",
    )
    entries = ok(api.get("auditor", f"{d}/history"))["entries"]
    noted = [e for e in entries if e["event_type"] == "dealledger.deal.note_added.v1"]
    assert noted[0]["changes"]["text"] == "[erased]"
    assert ok(api.get("auditor", f"{d}/verify"))["ok"] is True
    head = erased["position"]
    pipeline = ok(api.get("sales", "/v1/pipeline", group_by="currency", min_position=head))
    assert [(t["key"], t["amount"]) for t in pipeline["totals"]] == [
        ("EUR", {"amount": "50000.00", "currency": "EUR"})
    ]
    filtered = ok(api.get("sales", "/v1/pipeline", stage="lead", region="GB", currency="EUR"))
    assert [p["title"] for p in filtered["deals"]] == ["Wonka direct"]
    attribution = ok(api.get("manager", "/v1/attribution", min_position=head))
    acme = next(p for p in attribution["partners"] if p["partner_code"] == "acme")
    assert (acme["deals_won"], acme["deals_lost"]) == (0, 1)
    queue = ok(api.get("manager", "/v1/review-queue", min_position=head))
    assert queue["items"] == []
    assert queue["sla_hours"] == 48
    assert ok(api.request("GET", "/healthz")) == {"status": "ok"}
    assert ok(api.request("GET", "/readyz"))["status"] == "ready"
    assert ok(api.request("GET", "/problems/not_found"))["status"] == 404
    assert ok(api.request("GET", "/openapi.json"))["openapi"].startswith("3.")

    every_route = {
        (method, route.path)
        for route in api_routes(api.app)
        if route.path != "/metrics"
        for method in route.methods or ()
    }
    assert every_route - _served_routes(api) == set()


def test_a_command_answers_201_with_the_position_written_and_where_the_resource_is(
    api: Api,
) -> None:
    onboard(api, "acme")
    response = api.post("acme", "/v1/registrations", {
        "customer": CUSTOMER,
        "product_line": "Analytics",
        "estimated_value": {"amount": "1000", "currency": "USD"},
        "expected_close": "2027-03-31",
    }, key="reg-1")  # fmt: skip

    body = ok(response, 201)
    assert body["command_id"] == "reg-1"
    assert body["position"] == api.head()
    assert response.headers["X-Ledger-Position"] == str(body["position"])
    assert response.headers["Location"] == f"/v1/registrations/{body['aggregate_id']}"
    registration = ok(api.request("GET", response.headers["Location"], headers=api.headers("acme")))
    assert registration["registration"]["partner_code"] == "acme"
    assert registration["registration"]["submitted_by"] == "partner:acme"


def test_the_actor_comes_from_the_key_and_a_body_naming_one_is_refused(api: Api) -> None:
    onboard(api, "acme")
    body = {
        "customer": CUSTOMER,
        "product_line": "Analytics",
        "estimated_value": {"amount": "1000", "currency": "USD"},
        "expected_close": "2027-03-31",
    }
    impostor = {**body, "actor": {"kind": "user", "id": "carol", "role": "channel_manager"}}

    refused = api.post("acme", "/v1/registrations", impostor)
    accepted = ok(api.post("acme", "/v1/registrations", body, key="k"), 201)

    assert refused.status_code == 422
    assert ["body", "actor"] in [e["loc"] for e in refused.json()["errors"]]
    history = api.context.ledger().get_registration(
        __import__("uuid").UUID(accepted["aggregate_id"])
    )
    assert str(history.submitted_by) == "partner:acme"


def test_a_repeated_idempotency_key_returns_the_first_response_and_writes_nothing(
    api: Api,
) -> None:
    onboard(api, "acme")
    body = {"customer": CUSTOMER, "product_line": "Analytics",
            "estimated_value": {"amount": "1000", "currency": "USD"},
            "expected_close": "2027-03-31"}  # fmt: skip
    first = api.post("acme", "/v1/registrations", body, key="same-key")
    ok(api.post("manager", "/v1/partners", {"partner_code": "zeta", "name": "Zeta"}), 201)
    head = api.head()

    again = api.post("acme", "/v1/registrations", body, key="same-key")

    assert (again.status_code, again.json()) == (first.status_code, first.json())
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert api.head() == head


def test_the_same_idempotency_key_with_another_body_or_command_is_a_conflict(api: Api) -> None:
    onboard(api, "acme")
    registration = submit(api, "acme", "umbrella.example", amount="900000")["aggregate_id"]
    r = f"/v1/registrations/{registration}"
    ok(api.post("manager", f"{r}/request-info", {"note": "who buys?"}, key="k1"))

    other_body = api.post("manager", f"{r}/request-info", {"note": "budget?"}, key="k1")
    # Withdraw and approve have exactly the same fields: a key names one command only.
    ok(api.post("manager", f"{r}/withdraw", {"note": ""}, key="k2"))
    approve_same_fields = api.post("manager", f"{r}/approve", {"note": ""}, key="k2")

    for refused in (other_body, approve_same_fields):
        assert refused.status_code == 409, refused.text
        assert refused.json()["code"] == "idempotency_key_reused"


def test_idempotency_keys_are_scoped_to_the_principal(api: Api) -> None:
    onboard(api, "acme", "globex")

    mine = submit_with_key(api, "acme", "umbrella.example", "shared-key")
    theirs = submit_with_key(api, "globex", "initech.example", "shared-key")

    assert mine.status_code == theirs.status_code == 201
    assert mine.json()["aggregate_id"] != theirs.json()["aggregate_id"]


def submit_with_key(api: Api, partner: str, domain: str, key: str) -> httpx.Response:
    body = {"customer": {**CUSTOMER, "domain": domain, "name": domain}, "product_line": "Analytics",
            "estimated_value": {"amount": "1000", "currency": "USD"},
            "expected_close": "2027-03-31"}  # fmt: skip
    return api.post(partner, "/v1/registrations", body, key=key)


def test_a_query_with_min_position_reads_its_own_write(api: Api) -> None:
    onboard(api, "acme")
    written = submit(api, "acme", "umbrella.example")

    listed = api.get("acme", "/v1/registrations", min_position=written["position"])

    body = ok(listed)
    assert [r["registration_id"] for r in body["registrations"]] == [written["aggregate_id"]]
    assert body["freshness"] == {"source": "registration_queue", "position": written["position"]}
    assert listed.headers["X-Ledger-Position"] == str(written["position"])


def test_another_api_process_on_the_same_database_reads_the_write_after_waiting(
    api: Api,
) -> None:
    second = open_api(api.context.settings)
    try:
        onboard(api, "acme")
        written = submit(api, "acme", "umbrella.example")
        second.keys = api.keys

        pipeline = ok(second.get("acme", "/v1/registrations", min_position=written["position"]))

        assert len(pipeline["registrations"]) == 1
    finally:
        close_api(second)


def test_a_read_model_not_at_min_position_within_the_wait_answers_503_with_retry_after(
    api: Api,
) -> None:
    api.context.read_models.stop_feeding(for_good=True)  # left to a feed that is not running
    onboard(api, "acme")
    written = submit(api, "acme", "umbrella.example")

    response = api.get("manager", "/v1/registrations", min_position=written["position"])

    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    problem = response.json()
    assert (problem["code"], problem["source"]) == ("read_model_behind", "registration_queue")
    assert problem["position"] < problem["min_position"] == written["position"]


def test_a_min_position_beyond_the_ledger_head_is_refused_at_once(api: Api) -> None:
    onboard(api, "acme")
    beyond = api.head() + 1

    for path in ("/v1/pipeline", "/v1/partners/acme"):
        response = api.get("acme", path, min_position=beyond)

        assert response.status_code == 422
        problem = response.json()
        assert (problem["code"], problem["head"]) == ("invalid_input", beyond - 1)


def test_settings_keys_work_without_the_key_table_and_revoked_keys_stop_at_once(
    database_url: str,
) -> None:
    bootstrap = "dl_bootstrap01_" + "s" * 40
    settings = pg_settings(database_url, api_keys={bootstrap: "admin:ops"})
    api = open_api(settings)
    try:
        allowed = api.request("GET", "/v1/pipeline", headers={"X-API-Key": bootstrap})
        assert allowed.status_code == 200
        key_id = api.keys["sales"].split("_")[1]
        assert api.context.auth.keys.revoke(key_id)
        refused = api.get("sales", "/v1/pipeline")
        assert refused.status_code == 401
        assert "revoked" in refused.json()["detail"]
    finally:
        close_api(api)
        drop_schema(settings)


def test_metrics_count_commands_by_type_and_outcome_with_latency_buckets(api: Api) -> None:
    onboard(api, "acme")
    api.post("manager", "/v1/partners", {"partner_code": "acme", "name": "Again"})

    text = api.request("GET", "/metrics").text
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }

    onboarded = (("command", "OnboardPartner"), ("outcome", "accepted"))
    refused = (("command", "OnboardPartner"), ("outcome", "illegal_transition"))
    assert samples[("dealledger_commands_total", onboarded)] == 1
    assert samples[("dealledger_commands_total", refused)] == 1
    every = tuple(sorted((*onboarded, ("le", "+Inf"))))
    assert samples[("dealledger_command_duration_seconds_bucket", every)] == 1
    assert ("dealledger_projector_lag_positions", (("projection", "pipeline"),)) in samples
    assert ("dealledger_ledger_head_position", ()) in samples


def test_registrations_are_listed_page_by_page_with_a_cursor(api: Api) -> None:
    onboard(api, "acme")
    ids = []
    for domain in ("a.example", "b.example", "c.example"):
        ids.append(submit(api, "acme", domain)["aggregate_id"])
        api.clock.advance(timedelta(minutes=1))

    first = ok(api.get("acme", "/v1/registrations", limit=2, min_position=api.head()))
    second = ok(api.get("acme", "/v1/registrations", limit=2, cursor=first["next_cursor"]))
    bad = api.get("acme", "/v1/registrations", cursor="bm9wZQ")

    assert [r["registration_id"] for r in first["registrations"]] == ids[:2]
    assert [r["registration_id"] for r in second["registrations"]] == ids[2:]
    assert second["next_cursor"] is None
    assert (bad.status_code, bad.json()["code"]) == (422, "invalid_input")


def test_history_as_of_a_time_shows_the_deal_as_it_was_and_stops_its_events_there(
    api: Api,
) -> None:
    onboard(api, "acme")
    deal = convert(api, submit(api, "acme", "umbrella.example")["aggregate_id"])
    api.clock.advance(timedelta(days=1))
    moment = api.clock.now()
    api.clock.advance(timedelta(days=1))
    ok(api.post("sales", f"/v1/deals/{deal}/stage", {"stage": "proposal"}))

    then = ok(api.get("auditor", f"/v1/deals/{deal}/history", as_of=moment.isoformat()))
    now = ok(api.get("auditor", f"/v1/deals/{deal}/history"))
    before = api.get("auditor", f"/v1/deals/{deal}/history", as_of="2020-01-01T00:00:00+00:00")
    naive = api.get("auditor", f"/v1/deals/{deal}/history", as_of="2026-01-06T00:00:00")

    assert then["state"]["deal"]["stage"] == "lead"
    assert now["state"]["deal"]["stage"] == "proposal"
    assert len(then["entries"]) == len(now["entries"]) - 1
    assert (before.status_code, before.json()["code"]) == (404, "not_found")
    assert (naive.status_code, naive.json()["code"]) == (422, "invalid_input")
