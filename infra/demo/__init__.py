"""The main job on the embedded default: a scripted partner-programme scenario.

`run_demo` plays the story (`infra.demo.scenario`) through the real write side
(`DealLedger.execute`) on the demo's own SQLite store with a hand-moved clock, shows
each step as it happens, and ends with what the store holds (`infra.demo.report`):
partners, registrations and deals, then the read models fed from the same log, and
keys with curl lines for the HTTP API on that store. `infra.demo.render` draws it all;
`infra.demo.store` guards the store (it replaces only stores the demo created).

With ``fresh=False`` (``dealledger demo --keep``) another run is appended to the
existing store: its clock starts after the last stored event, and partner codes,
product lines and command ids carry a run suffix, so the same rules play out again.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from domain.clock import ManualClock
from domain.values import Actor, Role
from infra.bootstrap import Wiring
from infra.demo import render
from infra.demo.report import read_models, read_store
from infra.demo.scenario import Scenario
from infra.demo.store import DEMO_STORE, DemoRefused, claim_store, previous_runs
from infra.settings import Settings

DEMO_START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)  # a Monday morning

__all__ = ["DEMO_STORE", "DemoRefused", "run_demo"]


def run_demo(settings: Settings, store: Path, *, fresh: bool = True, force: bool = False) -> int:
    """Run the scripted scenario on the demo's SQLite store; 0 when it was told.

    Raises `DemoRefused`, before touching anything, when `store` exists and the demo
    did not create it, unless `force`. A command the story needs accepted that the
    ledger refuses ends it with that `DomainError`."""
    if settings.uses_postgres:
        render.postgres_ignored()
    path = store.resolve()
    settings = settings.model_copy(
        update={"database_url": None, "kafka_bootstrap": None, "sqlite_path": path}
    )
    claim_store(path, fresh=fresh, force=force)
    runs, last = previous_runs(settings)
    start = DEMO_START
    if last is not None and last >= start:
        start = datetime.combine(last.date() + timedelta(days=1), DEMO_START.timetz())
    run = runs + 1
    render.opening(path, fresh=fresh, run=run, start=start)

    clock = ManualClock(start)
    wiring = Wiring(settings, clock=clock)
    try:
        ledger = wiring.ledger()
        told = Scenario(ledger, clock, run, on_step=render.step).play()
        render.store_report(read_store(ledger, told.prefix, clock.now(), run), path)
        render.read_models(read_models(wiring, clock.now()))
        keys = wiring.key_store()
        render.api_example(
            path,
            manager_key=keys.create(Actor.user("carol", Role.CHANNEL_MANAGER), "demo"),
            partner_key=keys.create(Actor.partner("northwind"), "demo"),
        )
    finally:
        wiring.close()
    return 0
