"""Scenario 3: audit replay of a long deal, and current-state loads at several lengths.

- history: every HistoryEntry of `infra.audit.history.deal_history` for a deal with
  `audit_events` events (plus its registration and channel-protection events);
- state: `deal_as_of` (the current state replayed from stored events, no snapshots);
  both vs a raw `SELECT` of the same streams' rows + `json.loads` of each;
- load: `ledger.get_deal` (snapshots every `snapshot_interval` events) for deals of
  100, 1,000 and 10,000 events vs a raw `SELECT` + `json.loads` of that deal's rows.
"""

from __future__ import annotations

import json
import time
from datetime import date
from decimal import Decimal
from typing import Any
from uuid import UUID

import psycopg

from commands.models import (
    ConvertRegistration,
    CustomerIn,
    MoneyIn,
    SubmitRegistration,
)
from domain.clock import ManualClock
from domain.ids import protection_id
from infra.audit.history import deal_as_of, deal_history
from infra.audit.store import AuditStore
from infra.bootstrap import build_ledger
from tests.benchmarks.bench_commands import onboard
from tests.benchmarks.bench_common import Bench, Figure, Scale, events_table, repeat, say
from tests.benchmarks.bench_data import START, Ticker, extend_deal
from tests.support import actors
from tests.support.actors import as_command_actor

SALES = as_command_actor(actors.SALES)


def audit_replay(bench: Bench, scale: Scale) -> list[Figure]:
    settings = bench.settings("s3")
    clock = ManualClock(START)
    ledger = build_ledger(settings, clock=clock)
    conn = psycopg.connect(settings.psycopg_conninfo(), autocommit=True)
    table = events_table(ledger)
    try:
        onboard(ledger, ["audit"])
        lengths = sorted({*scale.load_events, scale.audit_events})
        deals: dict[int, tuple[UUID, UUID, str]] = {}
        tick = Ticker(START.replace(year=2027))
        for length in lengths:
            deals[length] = _long_deal(ledger, length, tick)
            say(f"3: built a deal of {length} events")
        deal_id, registration_id, key = deals[scale.audit_events]
        streams = [deal_id, registration_id, protection_id(key)]

        def raw_rows(ids: list[UUID]) -> int:
            rows = conn.execute(
                f"SELECT originator_id, originator_version, topic, state FROM {table} "
                "WHERE originator_id = ANY(%s) ORDER BY notification_id",
                (ids,),
            ).fetchall()
            decoded = [json.loads(bytes(row[3])) for row in rows]
            return len(decoded)

        def raw_ms(_: int) -> float:
            start = time.perf_counter()
            raw_rows(streams)
            return (time.perf_counter() - start) * 1000

        history_sizes: list[int] = []

        def history_ms(_: int) -> float:
            start = time.perf_counter()
            count = sum(1 for _ in deal_history(AuditStore(ledger), deal_id))
            elapsed = (time.perf_counter() - start) * 1000
            history_sizes.append(count)
            return elapsed

        def state_ms(_: int) -> float:
            start = time.perf_counter()
            state = deal_as_of(AuditStore(ledger), deal_id)
            elapsed = (time.perf_counter() - start) * 1000
            if state.deal_version != scale.audit_events:
                raise AssertionError(f"replayed v{state.deal_version}, not {scale.audit_events}")
            return elapsed

        history, raw_history = repeat(scale.reps, history_ms, raw_ms, label="3 audit history")
        state, raw_state = repeat(scale.reps, state_ms, raw_ms, label="3 audit current state")
        raw_count = raw_rows(streams)
        figures = [
            Figure(
                scenario="3",
                name="audit_history",
                title=f"full history of a {scale.audit_events:,}-event deal (deal_history)",
                unit="ms",
                higher_is_better=False,
                samples=history,
                baseline_title="raw SELECT + json.loads of the same rows",
                baseline_samples=raw_history,
                params={
                    "deal_events": scale.audit_events,
                    "history_entries": history_sizes[-1],
                    "raw_rows": raw_count,
                },
            ),
            Figure(
                scenario="3",
                name="audit_current_state",
                title="current state of that deal replayed from events (deal_as_of)",
                unit="ms",
                higher_is_better=False,
                samples=state,
                baseline_title="raw SELECT + json.loads of the same rows",
                baseline_samples=raw_state,
                params={"deal_events": scale.audit_events, "raw_rows": raw_count},
            ),
        ]
        loads: dict[int, float] = {}
        for length in scale.load_events:
            figure = _load_figure(ledger, conn, table, length, deals[length][0], scale)
            loads[length] = figure.median
            figures.append(figure)
        shortest = min(loads)
        for figure in figures[2:]:
            length = int(figure.params["deal_events"])
            relative = loads[length] / loads[shortest]
            figure.params[f"load_vs_{shortest}_events"] = round(relative, 3)
            figure.note = f"{relative:.2f}x the load time at {shortest} events"
        return figures
    finally:
        conn.close()
        ledger.close()


def _long_deal(ledger: Any, length: int, tick: Ticker) -> tuple[UUID, UUID, str]:
    """A registration converted into a deal, then grown to `length` events."""
    submitted = ledger.execute(
        SubmitRegistration(
            command_id=f"reg-{length}",
            actor=as_command_actor(actors.partner("audit")),
            partner_code="audit",
            customer=CustomerIn(
                name=f"Long {length}", domain=f"long{length}.example", country="US"
            ),
            product_line="cloud",
            estimated_value=MoneyIn(amount=Decimal("100000"), currency="USD"),
            expected_close=date(2030, 1, 1),
        )
    )
    converted = ledger.execute(
        ConvertRegistration(
            command_id=f"conv-{length}",
            actor=SALES,
            registration_id=submitted.aggregate_id,
            title=f"Long deal {length}",
            owner="sam",
        )
    )
    deal_id: UUID = converted.aggregate_id
    version = extend_deal(ledger, deal_id, length, tick)
    if version != length:
        raise AssertionError(f"built a deal of {version} events, not {length}")
    return deal_id, submitted.aggregate_id, str(submitted.result["conflict_key"])


def _load_figure(
    ledger: Any, conn: psycopg.Connection[Any], table: str, length: int, deal_id: UUID, scale: Scale
) -> Figure:
    loads_per_rep = 20 if length <= 1_000 else 5

    def load_ms(_: int) -> float:
        start = time.perf_counter()
        for _ in range(loads_per_rep):
            deal = ledger.get_deal(deal_id)
        elapsed = (time.perf_counter() - start) * 1000 / loads_per_rep
        if deal.version != length:
            raise AssertionError(f"loaded v{deal.version}, not {length}")
        return elapsed

    def raw_ms(_: int) -> float:
        start = time.perf_counter()
        for _ in range(loads_per_rep):
            rows = conn.execute(
                f"SELECT state FROM {table} WHERE originator_id = %s ORDER BY originator_version",
                (deal_id,),
            ).fetchall()
            [json.loads(bytes(row[0])) for row in rows]
        return (time.perf_counter() - start) * 1000 / loads_per_rep

    values, raw = repeat(scale.reps, load_ms, raw_ms, label=f"3 load a {length}-event deal")
    return Figure(
        scenario="3",
        name=f"deal_load_{length}",
        title=f"current state of a {length:,}-event deal (ledger.get_deal, snapshots)",
        unit="ms",
        higher_is_better=False,
        samples=values,
        baseline_title=f"raw SELECT + json.loads of its {length:,} rows",
        baseline_samples=raw,
        params={
            "deal_events": length,
            "loads_per_rep": loads_per_rep,
            "snapshot_interval": ledger.snapshotting_intervals[type(ledger.get_deal(deal_id))],
        },
    )
