"""Fixtures for tests against the real PostgreSQL and Kafka that `make test` starts.

These never skip: if the servers are missing, the tests fail and say how to start them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import psycopg
import pytest

from commands.ledger import DealLedger
from domain.clock import Clock, ManualClock
from infra.bootstrap import ledger_policy
from infra.settings import Settings

HOW_TO_START = "run `make services-up` (or `make test`), or set DEALLEDGER_TEST_DATABASE_URL"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration" in str(item.path).replace(os.sep, "/"):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def database_url() -> str:
    url = os.environ.get(
        "DEALLEDGER_TEST_DATABASE_URL",
        "postgresql://dealledger:dealledger@127.0.0.1:5432/dealledger_test",
    )
    try:
        with psycopg.connect(url, connect_timeout=5):
            pass
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL at {url} is unreachable ({exc}); {HOW_TO_START}")
    return url


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    bootstrap = os.environ.get("DEALLEDGER_TEST_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
    try:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000)
        admin.close()
    except KafkaError as exc:
        pytest.fail(f"Kafka at {bootstrap} is unreachable ({exc}); {HOW_TO_START}")
    return bootstrap


@pytest.fixture
def unique_name() -> str:
    return f"t_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def pg_schema(database_url: str) -> Iterator[str]:
    """A fresh PostgreSQL schema for one test's event store, dropped afterwards."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    yield schema
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


LedgerFactory = Callable[..., DealLedger]


@pytest.fixture
def pg_ledger(database_url: str, pg_schema: str) -> Iterator[LedgerFactory]:
    """Builds ledgers on the real PostgreSQL, all sharing this test's schema."""
    built: list[DealLedger] = []

    def build(clock: Clock | None = None, snapshot_interval: int = 100) -> DealLedger:
        settings = Settings(database_url=database_url, snapshot_interval=snapshot_interval)
        env = {**settings.eventsourcing_env(), "POSTGRES_SCHEMA": pg_schema}
        ledger = DealLedger(
            env=env,
            clock=clock or ManualClock(datetime(2026, 1, 5, 9, 0, tzinfo=UTC)),
            policy=ledger_policy(settings),
            snapshot_interval=snapshot_interval,
        )
        built.append(ledger)
        return ledger

    yield build
    for ledger in built:
        ledger.close()
