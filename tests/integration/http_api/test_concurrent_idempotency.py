"""One Idempotency-Key sent many times at once: every copy gets the first outcome."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx

from domain.deal import Deal
from tests.integration.http_api.support import CUSTOMER, Api, ok

THREADS = 16
ROUNDS = 6
STAGES = ("qualified", "proposal", "negotiation")


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


def _all_at_once(api: Api, path: str, body: dict[str, str], key: str) -> list[httpx.Response]:
    start = threading.Barrier(THREADS)

    def send(_: int) -> httpx.Response:
        start.wait()
        return api.post("sales", path, body, key=key)

    with ThreadPoolExecutor(THREADS) as pool:
        return list(pool.map(send, range(THREADS)))


def test_concurrent_copies_of_one_keyed_command_all_replay_the_first_outcome(api: Api) -> None:
    deal_id = _open_deal(api)
    path = f"/v1/deals/{deal_id}/stage"

    for round_ in range(ROUNDS):
        stage = STAGES[round_ % len(STAGES)]
        responses = _all_at_once(api, path, {"stage": stage}, key=f"k-{uuid.uuid4()}")

        answers = [(r.status_code, r.json()) for r in responses]
        assert [status for status, _ in answers] == [200] * THREADS, answers
        assert all(body == answers[0][1] for _, body in answers), answers
        assert sum(r.headers.get("Idempotent-Replayed") != "true" for r in responses) == 1

    deal = api.context.ledger().get_deal(uuid.UUID(deal_id))
    moves = [
        e for e in api.context.ledger().events.get(deal.id) if isinstance(e, Deal.StageChanged)
    ]
    assert [m.to_stage for m in moves] == [STAGES[r % len(STAGES)] for r in range(ROUNDS)]
