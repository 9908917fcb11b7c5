"""The same state machine as tests/property, on the real PostgreSQL event store, where
the hash chain of docs/architecture.md, invariant I5, is checked too."""

from __future__ import annotations

import os
import uuid

import psycopg
from hypothesis import settings

from commands.ledger import DealLedger
from domain.clock import ManualClock
from infra.settings import Settings
from tests.property.ledger_machine import POLICY, LedgerMachine

DATABASE_URL = os.environ.get(
    "DEALLEDGER_TEST_DATABASE_URL",
    "postgresql://dealledger:dealledger@127.0.0.1:5432/dealledger_test",
)
SCHEMA = f"prop_{uuid.uuid4().hex[:10]}"


class PostgresLedgerMachine(LedgerMachine):
    """Each example gets a fresh schema; the ledger reads back everything it checks."""

    def make_ledger(self, clock: ManualClock) -> DealLedger:
        with psycopg.connect(DATABASE_URL, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
            conn.execute(f"CREATE SCHEMA {SCHEMA}")
        env = {**Settings(database_url=DATABASE_URL).eventsourcing_env(), "POSTGRES_SCHEMA": SCHEMA}
        return DealLedger(
            env=env,
            clock=clock,
            policy=POLICY,
            snapshot_interval=3,
        )

    def teardown(self) -> None:
        self.ledger.close()


TestLedgerRulesOnPostgres = PostgresLedgerMachine.TestCase
TestLedgerRulesOnPostgres.settings = settings(
    max_examples=int(os.environ.get("DEALLEDGER_PG_PROPERTY_EXAMPLES", "50")),
    stateful_step_count=30,
)


def teardown_module() -> None:
    with psycopg.connect(DATABASE_URL, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
