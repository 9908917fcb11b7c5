"""The HTTP API on the embedded default (SQLite, read models fed in-process), the key
commands of the CLI, and the read-your-writes check used when Kafka feeds the models."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from domain.clock import ManualClock
from domain.values import Actor, Role
from infra.cli import main
from infra.http import create_app
from infra.http.context import ApiContext
from infra.settings import Settings
from tests.support.env import without_settings

REGISTRATION = {
    "customer": {"name": "Umbrella Corp", "domain": "umbrella.example", "country": "GB"},
    "product_line": "Analytics",
    "estimated_value": {"amount": "1000", "currency": "USD"},
    "expected_close": "2027-03-31",
}


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    without_settings(monkeypatch)
    monkeypatch.setenv("DEALLEDGER_SQLITE_PATH", str(tmp_path / "ledger.sqlite"))
    return Settings(api_read_wait_seconds=0.2)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    app = create_app(settings, clock=ManualClock(datetime(2026, 1, 5, 9, tzinfo=UTC)))
    with TestClient(app) as test_client:
        yield test_client


def _key(client: TestClient, actor: Actor) -> dict[str, str]:
    context: ApiContext = client.app.state.context  # type: ignore[attr-defined]
    return {"Authorization": f"Bearer {context.auth.keys.create(actor)}"}


def test_the_embedded_api_writes_to_sqlite_and_reads_its_own_writes_from_fed_models(
    client: TestClient, settings: Settings
) -> None:
    manager = _key(client, Actor.user("carol", Role.CHANNEL_MANAGER))
    acme = _key(client, Actor.partner("acme"))
    assert client.post("/v1/partners", json={"partner_code": "acme", "name": "Acme"},
                       headers=manager).status_code == 201  # fmt: skip

    written = client.post("/v1/registrations", json=REGISTRATION, headers=acme).json()
    listed = client.get(
        "/v1/registrations", params={"min_position": written["position"]}, headers=acme
    )

    assert listed.status_code == 200
    body = listed.json()
    assert [r["registration_id"] for r in body["registrations"]] == [written["aggregate_id"]]
    assert body["freshness"] == {"source": "registration_queue", "position": written["position"]}
    assert settings.sqlite_path.exists()
    assert settings.sqlite_path.with_name("ledger-read-models.sqlite").exists()
    assert client.get("/readyz").json()["checks"]["kafka"] == "not configured"


def test_keys_are_created_printed_once_listed_without_secrets_and_revoked_from_the_cli(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["keys", "create", "--user", "aud", "--role", "auditor", "--label", "q1"]) == 0
    key = capsys.readouterr().out.strip()
    key_id = key.split("_")[1]

    assert main(["keys", "list"]) == 0
    listing = capsys.readouterr().out
    assert main(["keys", "revoke", key_id]) == 0
    assert main(["keys", "revoke", key_id]) == 1

    assert key.startswith("dl_")
    assert key_id in listing
    assert "user:aud(auditor)" in listing
    assert "q1" in listing
    assert key.split("_", 2)[2] not in listing
    client = TestClient(create_app(settings))
    assert client.get("/v1/pipeline", headers={"X-API-Key": key}).status_code == 401


def test_a_key_needs_a_partner_or_a_user_with_a_role(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["keys", "create", "--user", "sam"]) == 2
    assert "--role" in capsys.readouterr().err


def test_the_demo_ends_with_curl_lines_whose_keys_work_against_the_api_on_its_store(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    import re

    from infra.demo import run_demo

    assert run_demo(settings, settings.sqlite_path) == 0
    out = capsys.readouterr().out
    manager_key = re.findall(r"Authorization: Bearer (dl_\S+)'", out)[0]
    partner_key = re.findall(r"X-API-Key: (dl_\S+)'", out)[0]
    curls = [line.strip() for line in out.splitlines() if line.strip().startswith("curl ")]

    client = TestClient(create_app(settings))
    pipeline = client.get("/v1/pipeline", headers={"Authorization": f"Bearer {manager_key}"})
    mine = client.get("/v1/registrations", headers={"X-API-Key": partner_key})

    assert len(curls) == 3
    assert f"DEALLEDGER_SQLITE_PATH={settings.sqlite_path.resolve()}" in out
    assert pipeline.status_code == 200
    assert len(pipeline.json()["deals"]) == 2
    assert {r["partner_code"] for r in mine.json()["registrations"]} == {"northwind"}


def test_readiness_names_an_unreachable_kafka_while_liveness_stays_up(
    settings: Settings,
) -> None:
    client = TestClient(create_app(settings.model_copy(update={"kafka_bootstrap": "127.0.0.1:1"})))

    ready = client.get("/readyz")

    assert ready.status_code == 503
    assert ready.json()["checks"]["database"] == "ok"
    assert ready.json()["checks"]["kafka"].startswith("unavailable")
    assert client.get("/healthz").status_code == 200
