"""Shared plumbing for the HTTP API tests: an API on its own PostgreSQL schema, keys
for every kind of principal (the suite's actors, tests/support/actors.py), and small
helpers to issue commands the way a client does, over HTTP."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

import httpx
import psycopg
from fastapi import FastAPI
from fastapi.testclient import TestClient

from domain.clock import ManualClock
from domain.values import Actor
from infra.http import create_app
from infra.http.context import ApiContext
from infra.settings import Settings
from tests.support.actors import STAFF, partner

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
PARTNERS = ("acme", "globex", "contoso")  # each holds a key under its own code
CUSTOMER = {"name": "Umbrella Corp", "domain": "umbrella.example", "country": "GB"}


def pg_settings(database_url: str, **overrides: Any) -> Settings:
    """Settings on a fresh schema of their own (no Kafka: the API feeds read models)."""
    schema = f"api_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    values: dict[str, Any] = {
        "database_url": database_url,
        "database_schema": schema,
        "api_read_wait_seconds": 1.0,
        "postgres_pool_size": 4,
        **overrides,
    }
    return Settings(**values)


def drop_schema(settings: Settings) -> None:
    assert settings.database_url is not None
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {settings.database_schema} CASCADE")


@dataclass
class Api:
    """An app, its test client and one API key per principal."""

    app: FastAPI
    client: TestClient
    clock: ManualClock
    keys: dict[str, str] = field(default_factory=dict)

    @property
    def context(self) -> ApiContext:
        context: ApiContext = self.app.state.context
        return context

    def key_for(self, name: str, actor: Actor) -> str:
        if name not in self.keys:
            self.keys[name] = self.context.auth.keys.create(actor, label=f"test {name}")
        return self.keys[name]

    def headers(self, who: str, idempotency_key: str | None = None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.keys[who]}"}
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        return headers

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        # Typed here: Starlette types its client against httpx2, which is not installed.
        return cast(httpx.Response, self.client.request(method, path, **kwargs))

    def post(self, who: str, path: str, body: Any = None, key: str | None = None) -> httpx.Response:
        return self.request("POST", path, json=body, headers=self.headers(who, key))

    def get(self, who: str, path: str, **params: Any) -> httpx.Response:
        return self.request("GET", path, params=params, headers=self.headers(who))

    def head(self) -> int:
        return self.context.ledger().recorder.max_notification_id() or 0


def open_api(settings: Settings) -> Api:
    clock = ManualClock(START)
    app = create_app(settings, clock=clock)
    client = TestClient(app, raise_server_exceptions=False)
    client.__enter__()
    api = Api(app, client, clock)
    for name, actor in STAFF.items():
        api.key_for(name, actor)
    for code in PARTNERS:
        api.key_for(code, partner(code))
    return api


def close_api(api: Api) -> None:
    api.client.__exit__(None, None, None)


def ok(response: httpx.Response, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


def onboard(api: Api, *codes: str) -> None:
    for code in codes:
        ok(api.post("manager", "/v1/partners", {"partner_code": code, "name": code.title()}), 201)


def submit(
    api: Api, partner: str, domain: str, amount: str = "1000", product: str = "Analytics"
) -> dict[str, Any]:
    body = {
        "customer": {**CUSTOMER, "domain": domain, "name": domain.split(".")[0].title()},
        "product_line": product,
        "estimated_value": {"amount": amount, "currency": "USD"},
        "expected_close": "2027-03-31",
    }
    return ok(api.post(partner, "/v1/registrations", body), 201)


def convert(api: Api, registration_id: str, title: str = "Deal") -> str:
    body = {"title": title, "owner": "sam", "region": "EMEA"}
    accepted = ok(api.post("sales", f"/v1/registrations/{registration_id}/convert", body), 201)
    deal_id: str = accepted["aggregate_id"]
    return deal_id
