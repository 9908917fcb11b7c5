"""A withdrawn registration holds no protection, and no view says it does."""

from __future__ import annotations

from tests.integration.http_api.support import Api, ok, onboard, submit


def test_a_withdrawn_registration_shows_no_protected_until(api: Api) -> None:
    onboard(api, "acme")
    approved = submit(api, "acme", "umbrella.example")
    registration = approved["aggregate_id"]
    assert approved["result"]["protected_until"] is not None

    withdrawn = ok(
        api.post("acme", f"/v1/registrations/{registration}/withdraw", {"note": "lost interest"})
    )

    assert withdrawn["result"]["protected_until"] is None
    shown = ok(api.get("acme", f"/v1/registrations/{registration}"))["registration"]
    assert (shown["status"], shown["protected_until"]) == ("withdrawn", None)
    listed = ok(api.get("acme", "/v1/registrations", min_position=withdrawn["position"]))
    [row] = listed["registrations"]
    assert (row["status"], row["protected_until"]) == ("withdrawn", None)
