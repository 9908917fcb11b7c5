"""Scenario 13: `dealledger verify --all` over a store of a million events.

`infra.audit.verify.verify_all(AuditStore(ledger))` (what `verify --all` runs, without
outside checkpoints): every event read in ledger order, every stream's hash chain and
the ledger tree recomputed and held to the stored ones; events/s. *Baseline:* a raw
psycopg SELECT of the same rows joined with their hash rows, in ledger order, fetched
fully into Python.

The store is genuine, only written quickly: the ledger's own recorder
(`HashChainingPostgresRecorder.insert_events`) appends the events, so the database
append function chains each event's hash and grows the ledger tree exactly as it does
for commands; only the command handling is skipped. Every stream holds the 10 stored
events of one real deal story (opened, stage moves, a revision, a second partner and
a split, a note, won) built by the domain methods and encoded by the ledger's mapper;
each append writes 500 streams, version by version, so streams interleave in the
ledger as concurrent deals do.
"""

from __future__ import annotations

import math
import random
import time
import uuid
from datetime import date
from decimal import Decimal
from typing import Any

import psycopg
from eventsourcing.persistence import StoredEvent

from domain.deal import Deal, PartnerRole
from domain.values import Customer, Money
from infra.audit.store import LEDGER_PAGE, AuditStore
from infra.audit.verify import VerifyReport, verify_all
from infra.bootstrap import build_ledger
from tests.benchmarks.bench_common import Bench, Figure, Scale, repeat, say
from tests.benchmarks.bench_data import SALES, STAGES, Ticker

STREAM_EVENTS = 10
# 5,000 events an append: the largest write group commit makes (MAX_EVENTS). Larger or
# smaller appends store at the same rate (measured: 500 to 10,000 events an append).
STREAMS_PER_APPEND = 500


def verify_store(bench: Bench, scale: Scale) -> list[Figure]:
    settings = bench.settings("s13")
    ledger = build_ledger(settings)
    conn = psycopg.connect(settings.psycopg_conninfo(), autocommit=True)
    try:
        store = AuditStore(ledger)
        story = _story(ledger)
        began = time.perf_counter()
        streams = _generate(ledger, story, scale.verify_events)
        generation = time.perf_counter() - began
        say(
            f"13: generated {scale.verify_events:,} events in {streams:,} streams in "
            f"{generation:.0f}s ({scale.verify_events / generation:,.0f} events/s through "
            "the recorder's append function)"
        )
        # A live store of this size has been vacuumed by autovacuum: do it now, so that
        # neither side pays the first reader's hint bits and autovacuum does not start
        # in the middle of a measured pass.
        began = time.perf_counter()
        for table in (store.events, store.hashes, store.tree):
            conn.execute(f"VACUUM ANALYZE {table}")
        vacuum = time.perf_counter() - began
        say(f"13: VACUUM ANALYZE took {vacuum:.1f}s")

        reports: list[VerifyReport] = []
        passes: list[float] = []

        def verify_rate(_: int) -> float:
            start = time.perf_counter()
            report = verify_all(AuditStore(ledger))
            elapsed = time.perf_counter() - start
            _must_be_intact(report, scale.verify_events, streams)
            reports.append(report)
            passes.append(elapsed)
            return report.events / elapsed

        def raw_rate(_: int) -> float:
            start = time.perf_counter()
            rows = _raw_select(conn, store)
            elapsed = time.perf_counter() - start
            if rows != scale.verify_events:
                raise AssertionError(
                    f"the raw SELECT read {rows:,} rows, not {scale.verify_events:,}"
                )
            return rows / elapsed

        # Only the baseline warms up: a verify pass of the full store takes most of a
        # minute, and the raw pass reads the same rows (the store was just written and
        # vacuumed, so both sides find it in memory either way).
        rates, raw = repeat(
            scale.verify_reps, verify_rate, raw_rate, label="13 verify --all", warm_measured=False
        )
    finally:
        conn.close()
        ledger.close()
    report = reports[-1]
    figure = Figure(
        scenario="13",
        name="verify_all",
        title=f"verify --all over {scale.verify_events:,} events (verify_all: chains, tree)",
        unit="events/s",
        higher_is_better=True,
        samples=rates,
        baseline_title="raw SELECT of the same rows + hash rows (keyset pages, binary)",
        baseline_samples=raw,
        params={
            "events": scale.verify_events,
            "streams": streams,
            "events_per_stream": STREAM_EVENTS,
            "events_per_append": STREAMS_PER_APPEND * STREAM_EVENTS,
            "generation_seconds": round(generation, 1),
            "generation_events_per_s": round(scale.verify_events / generation),
            "vacuum_seconds": round(vacuum, 1),
            "verify_seconds": [round(p, 2) for p in passes],
            "page_rows": LEDGER_PAGE,
        },
        checks={
            "ok": report.ok,
            "events": report.events,
            "streams": report.streams,
            "tree_size": report.tree_size,
            "sealed_from": report.sealed_from,
            "root": report.root,
            "problems": len(report.problems),
        },
    )
    figure.note = f"verify takes {1 / figure.ratio:.1f}x the raw SELECT's time"
    return [figure]


def _story(ledger: Any) -> list[StoredEvent]:
    """The 10 stored events of one deal story, as the ledger's mapper encodes them."""
    tick = Ticker()
    deal = Deal.open(
        uuid.uuid4(),
        "Data platform renewal",
        Customer("Northwind Traders", "northwind.example", "DE"),
        "cloud",
        Money(Decimal("250000"), "EUR"),
        date(2030, 1, 1),
        "sam",
        "EMEA",
        "default",
        None,
        uuid.uuid4(),
        "bp1",
        PartnerRole.RESELLER,
        SALES,
        tick(),
    )
    for stage in STAGES[:3]:
        deal.move_to_stage(stage, "progress", SALES, tick())
    deal.revise_amount(Money(Decimal("262500"), "EUR"), "re-scoped", SALES, tick())
    deal.attach_partner("bp2", PartnerRole.INFLUENCER, SALES, tick())
    deal.set_attribution({"bp1": Decimal(70), "bp2": Decimal(30)}, SALES, tick())
    deal.add_note("call notes: pricing agreed, legal review next week", SALES, tick())
    deal.move_to_stage(STAGES[3], "signed off", SALES, tick())
    deal.win(SALES, tick())
    story = [ledger.mapper.to_stored_event(event) for event in deal.collect_events()]
    if len(story) != STREAM_EVENTS:
        raise AssertionError(f"the deal story has {len(story)} events, not {STREAM_EVENTS}")
    return story


def _generate(ledger: Any, story: list[StoredEvent], events: int) -> int:
    """Appends `events` events through the ledger's recorder: streams of the story's
    events (the last one shorter when `events` is not a multiple), STREAMS_PER_APPEND
    streams an append, version by version. Returns how many streams it wrote."""
    rng = random.Random(13)
    written = streams = 0
    while written < events:
        left = events - written
        count = min(STREAMS_PER_APPEND, math.ceil(left / STREAM_EVENTS))
        ids = [uuid.UUID(int=rng.getrandbits(128), version=4) for _ in range(count)]
        lengths = [min(STREAM_EVENTS, left - n * STREAM_EVENTS) for n in range(count)]
        batch = [
            StoredEvent(stream, version + 1, story[version].topic, story[version].state)
            for version in range(STREAM_EVENTS)
            for stream, length in zip(ids, lengths, strict=True)
            if version < length
        ]
        positions = ledger.recorder.insert_events(batch)
        if positions is None or len(positions) != len(batch):
            raise AssertionError(f"an append of {len(batch)} events returned {positions!r}")
        written += len(batch)
        streams += count
    return streams


def _must_be_intact(report: VerifyReport, events: int, streams: int) -> None:
    """A pass that found the store broken (or did not see all of it) measured nothing."""
    wrong = [f"problem: {problem}" for problem in report.problems[:5]]
    if len(report.problems) > 5:
        wrong.append(f"... {len(report.problems):,} problems in all")
    for what, seen, due in (
        ("events", report.events, events),
        ("tree size", report.tree_size, events),
        ("streams", report.streams, streams),
        ("unsealed events", report.unsealed, 0),
        ("scheme-1 events", report.unpositioned, 0),
    ):
        if seen != due:
            wrong.append(f"{what}: {seen:,}, not {due:,}")
    if wrong:
        raise AssertionError("13: verify_all did not find the store intact: " + "; ".join(wrong))


def _raw_select(conn: psycopg.Connection[Any], store: AuditStore) -> int:
    """Every event with its hash row, in ledger order, into Python tuples; returns the
    row count. Keyset pages of LEDGER_PAGE rows (verify's own paging), binary format:
    the fastest of the ways measured here (a named server-side cursor in text or binary,
    10,000 or 50,000 rows a fetch; keyset pages in text or binary) at 100,000 and
    1,000,000 events."""
    sql = (
        "SELECT e.notification_id, e.originator_id, e.originator_version, e.topic, e.state, "
        f"h.prev_hash, h.hash, h.scheme, h.leaf FROM {store.events} e "
        f"LEFT JOIN {store.hashes} h USING (originator_id, originator_version) "
        f"WHERE e.notification_id > %s ORDER BY e.notification_id LIMIT {LEDGER_PAGE}"
    )
    count = after = 0
    with conn.cursor(binary=True) as cur:
        while True:
            cur.execute(sql, (after,), prepare=True)
            rows = cur.fetchall()
            count += len(rows)
            if len(rows) < LEDGER_PAGE:
                return count
            after = rows[-1][0]
