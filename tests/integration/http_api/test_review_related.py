"""A registration sent to review names the registrations behind each review reason."""

from __future__ import annotations

from typing import Any

from tests.integration.http_api.support import CUSTOMER, Api, ok, onboard, submit


def _queue_item(api: Api, registration_id: str, position: int) -> dict[str, Any]:
    queue = ok(api.get("manager", "/v1/review-queue", min_position=position))
    [item] = [i for i in queue["items"] if i["registration_id"] == registration_id]
    found: dict[str, Any] = item
    return found


def _shown(api: Api, who: str, registration_id: str) -> dict[str, Any]:
    shown: dict[str, Any] = ok(api.get(who, f"/v1/registrations/{registration_id}"))["registration"]
    return shown


def test_the_registration_and_the_review_queue_name_who_each_reason_is_about(api: Api) -> None:
    onboard(api, "acme", "globex", "contoso")
    holder = submit(api, "acme", "umbrella.example")["aggregate_id"]
    rival = submit(api, "globex", "umbrella.example")["aggregate_id"]
    third = submit(api, "contoso", "umbrella.example")
    # Same company name under another domain: a near-duplicate of all three.
    near = submit(api, "globex", "umbrella.test")

    assert third["result"]["review_reasons"] == ["key_contested", "key_protected"]
    assert near["result"]["review_reasons"] == ["near_duplicate"]
    contested = {"key_contested": [rival], "key_protected": [holder]}
    near_duplicate = {"near_duplicate": sorted([holder, rival, third["aggregate_id"]])}
    shown = _shown(api, "manager", third["aggregate_id"])
    assert (shown["review_reasons"], shown["related_registrations"]) == (
        ["key_contested", "key_protected"],
        contested,
    )
    assert _shown(api, "manager", near["aggregate_id"])["related_registrations"] == near_duplicate
    item = _queue_item(api, third["aggregate_id"], near["position"])
    assert item["related_registrations"] == contested
    item = _queue_item(api, near["aggregate_id"], near["position"])
    assert item["related_registrations"] == near_duplicate
    # Other partners' registrations stay hidden from a partner, like the review queue.
    assert _shown(api, "contoso", third["aggregate_id"])["related_registrations"] == {}


def test_a_resubmission_records_the_registrations_it_conflicts_with_then(api: Api) -> None:
    onboard(api, "acme", "globex")
    holder = submit(api, "acme", "umbrella.example")["aggregate_id"]
    big = submit(api, "globex", "initech.example", amount="900000")["aggregate_id"]
    ok(api.post("manager", f"/v1/registrations/{big}/request-info", {"note": "who buys?"}))

    # Renamed to the holder's company name: now a near-duplicate of it.
    resubmitted = ok(
        api.post(
            "globex",
            f"/v1/registrations/{big}/resubmit",
            {
                "customer": {**CUSTOMER, "name": "Umbrella", "domain": "initech.example"},
                "estimated_value": {"amount": "800000", "currency": "USD"},
                "expected_close": "2027-04-30",
            },
        )
    )

    shown = _shown(api, "manager", big)
    assert (shown["review_reasons"], shown["related_registrations"]) == (
        ["resubmitted"],
        {"near_duplicate": [holder]},
    )
    item = _queue_item(api, big, resubmitted["position"])
    assert item["related_registrations"] == {"near_duplicate": [holder]}
