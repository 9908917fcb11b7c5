"""Everything one API process holds: settings, clock, ledger, gateway, read models,
keys, metrics.

Its parts come from the composition root (`infra.bootstrap.Wiring`). The ledger is
built on first use, so the process starts (and /healthz answers) even while the
database is away; requests then get 503 until it is back.
"""

from __future__ import annotations

from datetime import datetime

from commands.ledger import DealLedger
from infra.bootstrap import Wiring
from infra.http.gauges import read_gauges
from infra.http.metrics import Metrics
from infra.http.read_models import Mode, ReadModels


class ApiContext:
    def __init__(self, wiring: Wiring) -> None:
        self.wiring = wiring
        self.settings = wiring.settings
        self.clock = wiring.clock
        self.metrics = Metrics(gauges=lambda: read_gauges(self))
        mode: Mode
        if self.settings.uses_postgres:
            mode = "kafka" if self.settings.bootstrap_servers else "inline"
        else:
            mode = "embedded"
        # Keys live in the event store's database (the same pool on PostgreSQL).
        self.db = wiring.key_database()
        self.read_models = ReadModels(
            wiring.read_database(),
            self.ledger,
            mode,
            self.settings,
            feed=wiring.read_feed if mode != "kafka" else None,
        )
        self.auth = wiring.authenticator()
        self.gateway = wiring.gateway(metrics=self.metrics)

    def ledger(self) -> DealLedger:
        """The write side, built on first use (and retried after a failed build)."""
        return self.wiring.ledger()

    def now(self) -> datetime:
        return self.clock.now()

    def close(self) -> None:
        self.read_models.stop_feeding()
        self.wiring.close()
