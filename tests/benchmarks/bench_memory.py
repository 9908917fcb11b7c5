"""Scenario 7: peak RSS of the projector while it consumes `memory_events` events.

Valid event messages (built from real domain events and encoded by projections.contract.encoding,
exactly as the relay would publish them) are produced straight to a topic. A
subprocess runs the real ProjectorHost over them into a fresh schema and reports its
peak RSS (VmHWM) at checkpoints; flat checkpoints mean memory does not grow with the
count. Baselines: a raw kafka-python consumer subprocess reading and json-decoding the
same messages (peak RSS), and the projector's own first checkpoint (growth).

Only memory is measured here, so to keep the full run short the first projector pass
starts before the messages are produced and the raw consumers run while it works. A
pass stops at `memory_seconds` with what it consumed by then (the figure says so).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from infra.kafka.relay import make_producer
from infra.settings import Settings
from tests.benchmarks.bench_common import ROOT, Bench, Figure, Scale, say
from tests.benchmarks.bench_data import synthetic_records
from tests.integration.flow import settings_env

RAW_SECONDS = 300.0


def _produce(settings: Settings, events: int) -> float:
    start = time.perf_counter()
    producer = make_producer(settings)
    try:
        futures = [
            producer.send(settings.events_topic, key=key, value=value, headers=headers)
            for key, value, headers in synthetic_records(events)
        ]
        producer.flush(timeout=300)
        for future in futures[-100:]:
            future.get(timeout=0)
    finally:
        producer.close(timeout=10)
    return time.perf_counter() - start


def _start(settings: Settings, log: Path, *args: str) -> subprocess.Popen[bytes]:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as errors:
        return subprocess.Popen(
            [sys.executable, "-m", "tests.benchmarks.bench_children", *args],
            cwd=ROOT,
            env=settings_env(settings),
            stdout=subprocess.PIPE,
            stderr=errors,
        )


def _finish(process: subprocess.Popen[bytes], timeout: float, log: Path) -> list[dict[str, Any]]:
    """Waits for a bench_children memory mode; returns its checkpoint lines (the last
    one is where it stopped)."""
    try:
        out, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate(timeout=10)
        raise TimeoutError(f"a memory child ran over {timeout:.0f}s (see {log})") from None
    lines = [json.loads(line) for line in out.decode().splitlines() if line.startswith("{")]
    if process.returncode != 0 or not lines:
        raise RuntimeError(f"memory child failed with exit code {process.returncode} (see {log})")
    return lines


def projector_memory(bench: Bench, scale: Scale) -> list[Figure]:
    settings = bench.settings("s7")
    bench.create_topics(settings, settings.events_topic, settings.events_dlq_topic)
    events = scale.memory_events
    budget = scale.memory_seconds
    log = ROOT / ".run" / "logs" / f"bench-{bench.tag}-memory.log"

    def projector(rep: int, on: Settings, count: int) -> subprocess.Popen[bytes]:
        rep_settings = on.model_copy(update={"database_schema": bench.schema(f"s7r{rep}")})
        group = bench.group("s7", f"r{rep}")
        checkpoints = str(scale.memory_checkpoints)
        return _start(
            rep_settings, log, "project-memory", group, str(count), checkpoints, str(budget)
        )

    def raw(on: Settings, count: int) -> list[dict[str, Any]]:
        child = _start(
            on, log, "raw-memory", str(count), str(scale.memory_checkpoints), str(RAW_SECONDS)
        )
        return _finish(child, RAW_SECONDS + 60, log)

    say("7: warm-up")
    warm = settings.model_copy(update={"events_topic": bench.topic("s7", "warm")})
    bench.create_topics(warm, warm.events_topic)
    warm_events = min(2_000, events)
    _produce(warm, warm_events)
    _finish(projector(0, warm, warm_events), budget + 120, log)
    raw(warm, warm_events)

    peaks: list[float] = []
    firsts: list[float] = []
    consumed: list[int] = []
    rates: list[float] = []
    raw_peaks: list[float] = []
    checkpoints: list[dict[str, Any]] = []
    produced_in = 0.0
    for rep in range(1, max(1, scale.memory_reps) + 1):
        child = projector(rep, settings, events)
        if rep == 1:
            # The projector consumes while the messages are produced, and the raw
            # consumers read them while it is still at work: only memory is measured.
            produced_in = _produce(settings, events)
            say(f"7: produced {events:,} synthetic events in {produced_in:.0f}s")
            for n in range(1, scale.reps + 1):
                lines = raw(settings, events)
                raw_peaks.append(lines[-1]["peak_kb"] / 1024)
                say(f"7: raw consumer {n}/{scale.reps}: peak {raw_peaks[-1]:.1f} MiB")
        lines = _finish(child, budget + 120, log)
        checkpoints = lines
        consumed.append(int(lines[-1]["events"]))
        peaks.append(lines[-1]["peak_kb"] / 1024)
        firsts.append(lines[0]["peak_kb"] / 1024)
        rates.append(lines[-1]["events"] / max(lines[-1]["seconds"], 1e-9))
        say(
            f"7: projector pass {rep}/{scale.memory_reps}: {consumed[-1]:,} events, peak "
            f"{peaks[-1]:.1f} MiB (first checkpoint {firsts[-1]:.1f}), {rates[-1]:.0f} events/s"
        )
    table: list[dict[str, Any]] = []
    for line in checkpoints:
        if table and table[-1]["events"] == line["events"]:
            continue  # the closing line repeats the last checkpoint
        table.append(
            {
                "events": line["events"],
                "peak_mib": round(line["peak_kb"] / 1024, 1),
                "rss_mib": round(line["rss_kb"] / 1024, 1),
            }
        )
    short = min(consumed) < events
    note = (
        f"stopped at the {budget:.0f}s time budget after {min(consumed):,} of {events:,} events"
        if short
        else ""
    )
    params = {
        "events": events,
        "events_consumed": consumed,
        "projector_passes": len(consumed),
        "time_budget_s": budget,
        "checkpoints_last_pass": table,
        "projector_events_per_s": [round(r) for r in rates],
        "produce_seconds": round(produced_in, 1),
        "max_poll_records": 500,
    }
    return [
        Figure(
            scenario="7",
            name="projector_peak_rss",
            title=f"projector peak RSS consuming {events:,} events (subprocess VmHWM)",
            unit="MiB",
            higher_is_better=False,
            samples=peaks,
            baseline_title="raw kafka-python consumer + json.loads, same messages",
            baseline_samples=raw_peaks,
            params=params,
            note=note,
        ),
        Figure(
            scenario="7",
            name="projector_rss_growth",
            title=f"projector peak RSS at the end vs at {table[0]['events']:,} events",
            unit="MiB",
            higher_is_better=False,
            samples=peaks,
            baseline_title=f"peak RSS at the first checkpoint ({table[0]['events']:,} events)",
            baseline_samples=firsts,
            params={"checkpoints_last_pass": table},
            note="ratio 1.00 = no growth with the count" + (f"; {note}" if note else ""),
        ),
    ]
