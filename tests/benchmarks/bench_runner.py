"""`python -m tests.benchmarks`: runs the scenarios, prints the table, writes the JSON.

Starts nothing: PostgreSQL and Kafka must be up (`make bench` runs `make services-up`
first). Each scenario gets its own schema and topics, removed at the end.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from tests.benchmarks.bench_common import FULL, QUICK, ROOT, Bench, Figure, Scale, say

MEMORY_OVERHEAD_SECONDS = 30.0  # scenario 7's warm-up and wrap-up, and the clean-up
# What the scenarios after 7 take in a full run, kept free when scenario 7's pass is cut.
LATER_SECONDS = {"8": 240.0, "9": 150.0, "13": 240.0}
LOCAL_DATABASE_URL = "postgresql://dealledger:dealledger@127.0.0.1:5432/dealledger_bench"

Scenario = Callable[[Bench, Scale], list[Figure]]


def scenarios() -> dict[str, tuple[str, Scenario]]:
    from tests.benchmarks import (
        bench_audit,
        bench_commands,
        bench_edge,
        bench_freshness,
        bench_kafka,
        bench_memory,
        bench_read_side,
        bench_verify,
    )

    return {
        "1": ("command throughput, one client", bench_commands.one_client),
        "2": ("command throughput, concurrent clients", bench_commands.concurrent_clients),
        "3": ("audit replay and current-state loads", bench_audit.audit_replay),
        "4": ("relay throughput", bench_kafka.relay_throughput),
        "5": ("projection rebuild from Kafka", bench_kafka.projection_rebuild),
        "6": ("end-to-end freshness", bench_freshness.freshness),
        "7": ("projector memory", bench_memory.projector_memory),
        "8": ("projector catching up a backlog", bench_read_side.projector_catch_up),
        "9": ("pipeline queries under HTTP load", bench_read_side.http_queries_under_load),
        "10": ("submissions through HTTP, 16 clients", bench_edge.http_submissions),
        "11": ("200 partners on one key through HTTP", bench_edge.same_key_burst),
        "12": ("submissions through the Kafka command topic", bench_edge.kafka_submissions),
        "13": ("verify --all over a large store", bench_verify.verify_store),
    }


def default_database_url() -> str:
    return os.environ.get("DEALLEDGER_BENCH_DATABASE_URL") or os.environ.get(
        "DEALLEDGER_DATABASE_URL", LOCAL_DATABASE_URL
    )


def default_kafka() -> str:
    for name in (
        "DEALLEDGER_BENCH_KAFKA_BOOTSTRAP",
        "DEALLEDGER_KAFKA_BOOTSTRAP",
        "DEALLEDGER_TEST_KAFKA_BOOTSTRAP",
    ):
        if os.environ.get(name):
            return os.environ[name]
    return "127.0.0.1:9092"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tests.benchmarks",
        description="Deal Ledger benchmarks: every figure against a raw baseline of the same run.",
    )
    parser.add_argument("--quick", action="store_true", help="small scale (about a minute)")
    parser.add_argument("--only", default="", help="comma-separated scenario numbers (1-13)")
    parser.add_argument("--reps", type=int, help="measured repetitions per scenario")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "bench-results.json", help="where the JSON goes"
    )
    parser.add_argument(
        "--database-url",
        default=default_database_url(),
        help="PostgreSQL (DEALLEDGER_BENCH_DATABASE_URL; each scenario uses its own schema)",
    )
    parser.add_argument(
        "--kafka-bootstrap",
        default=default_kafka(),
        help="Kafka (DEALLEDGER_BENCH_KAFKA_BOOTSTRAP; topics are named bench.<run>.*)",
    )
    parser.add_argument("--commands", type=int, help="scenario 1: commands per repetition")
    parser.add_argument("--clients", type=int, help="scenario 2: concurrent clients")
    parser.add_argument("--audit-events", type=int, help="scenario 3: events of the long deal")
    parser.add_argument("--relay-events", type=int, help="scenario 4: events relayed")
    parser.add_argument("--rebuild-events", type=int, help="scenario 5: events rebuilt")
    parser.add_argument("--freshness-seconds", type=float, help="scenario 6: seconds per rep")
    parser.add_argument("--memory-events", type=int, help="scenario 7: events consumed")
    parser.add_argument("--memory-reps", type=int, help="scenario 7: measured passes")
    parser.add_argument(
        "--memory-seconds", type=float, help="scenario 7: time budget of one projector pass"
    )
    parser.add_argument("--backlog-events", type=int, help="scenario 8: events caught up")
    parser.add_argument("--http-seconds", type=float, help="scenario 9: seconds per rep")
    parser.add_argument(
        "--verify-events", type=int, help="scenario 13: events of the store verify checks"
    )
    parser.add_argument("--verify-reps", type=int, help="scenario 13: measured verify passes")
    parser.add_argument(
        "--run-seconds", type=float, help="cut scenario 7's pass to end the run in time (0: no cap)"
    )
    return parser.parse_args(argv)


def choose_scale(args: argparse.Namespace) -> Scale:
    scale = QUICK if args.quick else FULL
    overrides: dict[str, Any] = {}
    for arg, name in (
        ("reps", "reps"),
        ("commands", "commands"),
        ("clients", "clients"),
        ("relay_events", "relay_events"),
        ("rebuild_events", "rebuild_events"),
        ("freshness_seconds", "freshness_seconds"),
        ("memory_events", "memory_events"),
        ("memory_reps", "memory_reps"),
        ("memory_seconds", "memory_seconds"),
        ("backlog_events", "backlog_events"),
        ("http_seconds", "http_seconds"),
        ("verify_events", "verify_events"),
        ("verify_reps", "verify_reps"),
        ("run_seconds", "run_seconds"),
    ):
        value = getattr(args, arg)
        if value is not None:
            if value < 0 or (value == 0 and name != "run_seconds"):
                raise SystemExit(f"--{arg.replace('_', '-')} must be positive")
            overrides[name] = value
    if args.audit_events is not None:
        events = max(args.audit_events, 100)
        overrides["audit_events"] = events
        overrides["load_events"] = tuple(sorted({n for n in (100, 1_000, events) if n <= events}))
    return replace(scale, **overrides)


def check_services(database_url: str, kafka_bootstrap: str) -> None:
    try:
        with psycopg.connect(database_url, connect_timeout=5):
            pass
    except psycopg.OperationalError as exc:
        raise SystemExit(
            f"PostgreSQL at {database_url} is unreachable ({exc}); run `make services-up` "
            "or set DEALLEDGER_BENCH_DATABASE_URL"
        ) from None
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    try:
        KafkaAdminClient(bootstrap_servers=kafka_bootstrap, request_timeout_ms=10000).close()
    except KafkaError as exc:
        raise SystemExit(
            f"Kafka at {kafka_bootstrap} is unreachable ({exc!r}); run `make services-up` "
            "or set DEALLEDGER_BENCH_KAFKA_BOOTSTRAP"
        ) from None


def fmt(value: float) -> str:
    if math.isnan(value):
        return "n/a"
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def table(figures: list[Figure]) -> str:
    header = ("#", "figure", "unit", "median", "min", "max", "baseline", "baseline median", "ratio")
    rows = [
        (
            f.scenario,
            f.name,
            f.unit,
            fmt(f.median),
            fmt(min(f.samples)),
            fmt(max(f.samples)),
            f.baseline_title,
            fmt(f.baseline),
            fmt(f.ratio),
        )
        for f in figures
    ]
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    right = {3, 4, 5, 7, 8}

    def line(row: tuple[str, ...]) -> str:
        cells = [
            str(c).rjust(widths[i]) if i in right else str(c).ljust(widths[i])
            for i, c in enumerate(row)
        ]
        return "  ".join(cells).rstrip()

    out = [line(header), line(tuple("-" * w for w in widths))]
    out.extend(line(r) for r in rows)
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    scale = choose_scale(args)
    known = scenarios()
    wanted = [s.strip() for s in args.only.split(",") if s.strip()] or list(known)
    unknown = [s for s in wanted if s not in known]
    if unknown:
        raise SystemExit(f"unknown scenario(s) {unknown}; choose from {list(known)}")
    check_services(args.database_url, args.kafka_bootstrap)
    bench = Bench(args.database_url, args.kafka_bootstrap)
    say(
        f"run {bench.tag}: {scale.name} scale, {scale.reps} repetitions after a warm-up, "
        f"{os.cpu_count()} CPUs, PostgreSQL {args.database_url.rsplit('@', 1)[-1]}, "
        f"Kafka {args.kafka_bootstrap}"
    )
    started = time.monotonic()
    figures: list[Figure] = []
    timings: dict[str, float] = {}
    failures: dict[str, str] = {}
    try:
        for number in wanted:
            title, run = known[number]
            say(f"scenario {number}: {title}")
            began = time.monotonic()
            scenario_scale = scale
            if number == "7" and scale.run_seconds:
                # The projector pass is the long one: cut it to end the run in time.
                later = sum(LATER_SECONDS.get(n, 0.0) for n in wanted if int(n) > 7)
                left = scale.run_seconds - (began - started) - MEMORY_OVERHEAD_SECONDS - later
                scenario_scale = replace(
                    scale, memory_seconds=max(60.0, min(scale.memory_seconds, left))
                )
                say(f"7: a projector pass may take {scenario_scale.memory_seconds:.0f}s")
            try:
                figures.extend(run(bench, scenario_scale))
            except Exception as exc:
                failures[number] = repr(exc)
                say(f"scenario {number} FAILED: {exc!r}")
                import traceback

                traceback.print_exc()
            timings[number] = round(time.monotonic() - began, 1)
            say(f"scenario {number} took {timings[number]:.0f}s")
    finally:
        say("cleaning up schemas and topics")
        bench.cleanup()
    elapsed = time.monotonic() - started
    print()
    print(table(figures))
    print()
    print("ratio = median / baseline median (rates: fraction of the baseline's rate;")
    print("times and sizes: multiple of the baseline's). Re-measure; these are not promises.")
    result = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpu_count": os.cpu_count(),
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "scale": scale.to_json(),
        "run_seconds": round(elapsed, 1),
        "scenario_seconds": timings,
        "failures": failures,
        "scenarios": [f.to_json() for f in figures],
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    violated = [f for f in figures if f.checks and not f.checks.get("ok", True)]
    print(f"\nwrote {args.out} ({len(figures)} figures) in {elapsed:.0f}s")
    for number, error in failures.items():
        print(f"FAILED: scenario {number}: {error}")
    for figure in violated:
        details = {k: v for k, v in figure.checks.items() if k != "ok"}
        print(f"CHECK FAILED: {figure.name}: {json.dumps(details, default=str)[:1500]}")
    return 1 if failures or violated else 0


if __name__ == "__main__":
    sys.exit(main())
