"""The composition root: builds the ledger from settings. Nothing connects at import."""

from __future__ import annotations

from commands.ledger import DealLedger
from commands.unit_of_work import LedgerPolicy
from domain.clock import Clock
from infra.settings import Settings


def ledger_policy(settings: Settings) -> LedgerPolicy:
    return LedgerPolicy(
        protection_days=settings.protection_days,
        max_extensions=settings.max_extensions,
        auto_approve_limits=dict(settings.auto_approve_limits),
    )


def build_ledger(settings: Settings, clock: Clock | None = None) -> DealLedger:
    """The write-side application on PostgreSQL, or on embedded SQLite without a URL.

    On PostgreSQL the library creates its tables on start-up; processes starting
    together against a fresh database would race on that DDL, so it is serialised
    with an advisory lock."""

    def construct() -> DealLedger:
        return DealLedger(
            env=settings.eventsourcing_env(),
            clock=clock,
            policy=ledger_policy(settings),
            snapshot_interval=settings.snapshot_interval,
        )

    if not settings.uses_postgres:
        settings.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
        return construct()
    import psycopg

    from infra.store.ddl import serialised_ddl

    with (
        psycopg.connect(settings.psycopg_conninfo(), autocommit=True) as conn,
        serialised_ddl(conn),
    ):
        return construct()
