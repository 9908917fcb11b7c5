"""Everything one API process holds: settings, clock, ledger, read models, keys, metrics.

The ledger is built on first use, so the process starts (and /healthz answers) even
while the database is away; requests then get 503 until it is back.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from commands.ledger import DealLedger
from domain.clock import Clock, SystemClock
from infra.gateway.key_store import KeyStore, bootstrap_keys
from infra.gateway.principals import Authenticator
from infra.http.metrics import Metrics
from infra.http.read_models import Mode, ReadModels
from infra.settings import Settings
from infra.store.databases import Database, PostgresDatabase, SqliteDatabase


class ApiContext:
    def __init__(
        self, settings: Settings, ledger: DealLedger | None = None, clock: Clock | None = None
    ) -> None:
        self.settings = settings
        self.clock: Clock = clock or (ledger.clock if ledger is not None else SystemClock())
        self._ledger = ledger
        self._owns_ledger = ledger is None
        self._ledger_lock = threading.Lock()
        self.metrics = Metrics()
        read_db: Database
        mode: Mode
        if settings.uses_postgres:
            self.db: Database = PostgresDatabase(
                settings.psycopg_conninfo(), max_size=settings.postgres_pool_size
            )
            read_db = self.db
            mode = "kafka" if settings.bootstrap_servers else "inline"
        else:
            from consumers.embedded_feed import read_model_path

            self.db = SqliteDatabase(settings.sqlite_path)
            read_db = SqliteDatabase(read_model_path(settings.sqlite_path))
            mode = "embedded"
        self.read_models = ReadModels(read_db, self.ledger, mode, settings.api_read_wait_seconds)
        self.auth = Authenticator(
            KeyStore(self.db), bootstrap_keys(settings.api_keys, datetime.now(UTC))
        )

    def ledger(self) -> DealLedger:
        """The write side, built on first use (and retried after a failed build)."""
        if self._ledger is None:
            with self._ledger_lock:
                if self._ledger is None:
                    from infra.bootstrap import build_ledger

                    self._ledger = build_ledger(self.settings, clock=self.clock)
        return self._ledger

    def now(self) -> datetime:
        return self.clock.now()

    def close(self) -> None:
        self.read_models.close()
        if self.read_models.db is not self.db:
            self.db.close()
        if self._owns_ledger and self._ledger is not None:
            self._ledger.close()
            self._ledger = None
