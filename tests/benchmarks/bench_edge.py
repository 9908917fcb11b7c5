"""Scenarios 10-12: the write side through its real edges.

10. Sustained `POST /v1/registrations` through `dealledger serve` (PostgreSQL, one
    process, so its workers share group commit) from 16 concurrent HTTP clients, each
    a partner registering its own customers: commands/s.
11. 200 partners submit the SAME conflict key at once through HTTP: the p99 answer
    time. Checks: no answer is `concurrent_modification`, every one is a documented
    outcome, and exactly one registration holds the key.
12. The same submissions through the Kafka command topic: envelopes already on the
    topic, `dealledger command-consumer` running; commands/s from its first result to
    its last.

Baseline of 10 and 12: the same submissions by one in-process client
(`DealLedger.execute`), measured in the same run. Baseline of 11: 200 concurrent
submissions at once on 200 different keys.
"""

from __future__ import annotations

import json
import random
import secrets
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from kafka import KafkaConsumer, KafkaProducer

from commands.models import OnboardPartner, SubmitRegistration
from infra.bootstrap import build_ledger
from infra.settings import Settings
from tests.benchmarks.bench_common import (
    ROOT,
    Bench,
    Deadline,
    Figure,
    Scale,
    percentile,
    repeat,
    say,
)
from tests.integration.flow import settings_env
from tests.support import actors
from tests.support.actors import as_command_actor

MANAGER = as_command_actor(actors.MANAGER)
HTTP_CLIENTS = 16
SAME_KEY_PARTNERS = 200


def _body(number: str) -> dict[str, Any]:
    """A registration body for a customer of its own (name and domain unique)."""
    return {
        "customer": {"name": f"Edge {number}", "domain": f"edge-{number}.example", "country": "US"},
        "product_line": "cloud",
        "estimated_value": {"amount": "12000", "currency": "USD"},
        "expected_close": "2030-01-31",
    }


def _setup(
    bench: Bench, scenario: str, partners: int, **overrides: Any
) -> tuple[Settings, dict[str, str]]:
    """A schema with `partners` onboarded partners and a key for each."""
    keys = {f"p{n}": f"dl_bench{scenario}p{n}_{secrets.token_urlsafe(24)}" for n in range(partners)}
    settings = bench.settings(
        scenario,
        api_keys={key: f"partner:{code}" for code, key in keys.items()},
        postgres_pool_size=24,
        **overrides,
    )
    ledger = build_ledger(settings)
    try:
        for code in keys:
            ledger.execute(
                OnboardPartner(
                    command_id=f"{scenario}-onboard-{code}", actor=MANAGER, partner_code=code,
                    name=code.upper(),
                )
            )  # fmt: skip
    finally:
        ledger.close()
    return settings, keys


def _in_process_rate(settings: Settings, code: str, tag: str, count: int) -> float:
    """One client, in process: `count` submissions by partner `code`."""
    ledger = build_ledger(settings)
    try:
        commands = [
            SubmitRegistration.model_validate(
                {
                    "command_id": f"inproc-{tag}-{n}",
                    "actor": as_command_actor(actors.partner(code)).model_dump(),
                    "partner_code": code,
                    **_body(f"{tag}-{n}"),
                }
            )
            for n in range(count)
        ]
        started = time.perf_counter()
        for command in commands:
            ledger.execute(command)
        return count / (time.perf_counter() - started)
    finally:
        ledger.close()


def serve_api(settings: Settings, port: int, log: Path) -> subprocess.Popen[bytes]:
    """`dealledger serve` on `port`, once it answers /readyz."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as handle:
        process = subprocess.Popen(
            [sys.executable, "-m", "infra.cli", "serve", "--port", str(port)],
            cwd=ROOT,
            env=settings_env(settings),
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
    deadline = Deadline(60, "the API to answer /readyz")
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        if process.poll() is not None:
            raise AssertionError(f"dealledger serve exited with {process.returncode}; see {log}")
        deadline.check()
        time.sleep(0.2)


def stop_api(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()


# -- scenario 10 ---------------------------------------------------------------------


def http_submissions(bench: Bench, scale: Scale) -> list[Figure]:
    settings, keys = _setup(bench, "s10", HTTP_CLIENTS, kafka_bootstrap=None)
    port = 18000 + random.randrange(1000)
    server = serve_api(settings, port, ROOT / ".run" / "logs" / f"bench-{bench.tag}-s10-serve.log")
    base = f"http://127.0.0.1:{port}"
    codes = list(keys)

    def through_http(rep: int) -> float:
        seconds = scale.http_seconds if rep else min(3.0, scale.http_seconds)
        done = [0] * HTTP_CLIENTS
        errors: list[str] = []

        def client(n: int) -> None:
            headers = {"Authorization": f"Bearer {keys[codes[n]]}"}
            stop = time.monotonic() + seconds
            with httpx.Client(base_url=base, headers=headers, timeout=60) as http:
                while time.monotonic() < stop:
                    body = _body(f"h{rep}-{n}-{done[n]}")
                    response = http.post(
                        "/v1/registrations", json={"partner_code": codes[n], **body}
                    )
                    if response.status_code not in (200, 201):
                        errors.append(f"{response.status_code} {response.text[:200]}")
                        return
                    done[n] += 1

        started = time.perf_counter()
        threads = [threading.Thread(target=client, args=(n,)) for n in range(HTTP_CLIENTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(seconds + 120)
        elapsed = time.perf_counter() - started
        if errors:
            raise AssertionError(f"{len(errors)} submissions failed: {errors[:3]}")
        return sum(done) / elapsed

    def in_process(rep: int) -> float:
        return _in_process_rate(settings, codes[0], f"s10r{rep}", max(60, scale.commands // 3))

    try:
        rates, baseline = repeat(scale.reps, through_http, in_process, label="10 HTTP submissions")
    finally:
        stop_api(server)
    return [
        Figure(
            scenario="10",
            name="submit_http_16_clients",
            title=f"POST /v1/registrations/s, {HTTP_CLIENTS} HTTP clients, one dealledger serve",
            unit="commands/s",
            higher_is_better=True,
            samples=rates,
            baseline_title="one in-process client, same submissions (DealLedger.execute)",
            baseline_samples=baseline,
            params={"clients": HTTP_CLIENTS, "seconds_per_rep": scale.http_seconds},
        )
    ]


# -- scenario 11 ---------------------------------------------------------------------


def same_key_burst(bench: Bench, scale: Scale) -> list[Figure]:
    settings, keys = _setup(bench, "s11", SAME_KEY_PARTNERS, kafka_bootstrap=None)
    port = 18000 + random.randrange(1000)
    server = serve_api(settings, port, ROOT / ".run" / "logs" / f"bench-{bench.tag}-s11-serve.log")
    base = f"http://127.0.0.1:{port}"
    codes = list(keys)
    statuses: Counter[str] = Counter()
    codes_seen: Counter[str] = Counter()
    holders: list[int] = []

    def burst(rep: int, same: bool) -> float:
        barrier = threading.Barrier(SAME_KEY_PARTNERS, timeout=120)
        latencies: list[float] = []
        lock = threading.Lock()
        approved = [0]

        def partner(n: int) -> None:
            number = f"k{rep}" if same else f"k{rep}-{n}"
            body = {"partner_code": codes[n], **_body(number)}
            body["customer"]["name"] = f"Edge {number} by {codes[n]}"  # one key, many names
            headers = {"Authorization": f"Bearer {keys[codes[n]]}"}
            with httpx.Client(base_url=base, headers=headers, timeout=120) as http:
                barrier.wait()
                started = time.perf_counter()
                response = http.post("/v1/registrations", json=body)
                elapsed = (time.perf_counter() - started) * 1000
            with lock:
                latencies.append(elapsed)
                if same:
                    if response.status_code in (200, 201):
                        status = response.json()["result"].get("status", "?")
                        statuses[status] += 1
                        approved[0] += status == "approved"
                    else:
                        codes_seen[response.json().get("code", str(response.status_code))] += 1

        threads = [threading.Thread(target=partner, args=(n,)) for n in range(SAME_KEY_PARTNERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(300)
        if same:
            holders.append(approved[0])
        return percentile(latencies, 99)

    try:
        same, distinct = repeat(
            scale.reps,
            lambda rep: burst(rep, True),
            lambda rep: burst(rep, False),
            label="11 same-key burst",
        )
    finally:
        stop_api(server)
    checks = {
        "concurrent_modification": codes_seen.get("concurrent_modification", 0),
        "refusals": dict(codes_seen),
        "statuses": dict(statuses),
        "approved_per_burst": holders,
        "ok": codes_seen.get("concurrent_modification", 0) == 0 and set(holders) == {1},
    }
    say(f"11: checks {checks}")
    return [
        Figure(
            scenario="11",
            name="same_key_http_p99",
            title=f"p99 answer, {SAME_KEY_PARTNERS} partners submitting one key at once (HTTP)",
            unit="ms",
            higher_is_better=False,
            samples=same,
            baseline_title=f"p99 answer, {SAME_KEY_PARTNERS} submissions on distinct keys at once",
            baseline_samples=distinct,
            params={"partners": SAME_KEY_PARTNERS},
            checks=checks,
            note="target: no concurrent_modification, p99 at most 1,000 ms",
        )
    ]


# -- scenario 12 ---------------------------------------------------------------------


def kafka_submissions(bench: Bench, scale: Scale) -> list[Figure]:
    settings, keys = _setup(bench, "s12", 8)
    bench.create_topics(
        settings,
        settings.commands_topic,
        settings.command_results_topic,
        settings.commands_dlq_topic,
        settings.events_topic,
        settings.events_dlq_topic,
    )
    codes = list(keys)
    count = max(200, scale.commands)

    def through_kafka(rep: int) -> float:
        producer = KafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all")
        try:
            for n in range(count):
                code = codes[n % len(codes)]
                envelope = {
                    "type": "SubmitRegistration",
                    "command_id": f"kafka-{rep}-{n}",
                    "api_key": keys[code],
                    "payload": {"partner_code": code, **_body(f"q{rep}-{n}")},
                }
                producer.send(
                    settings.commands_topic,
                    key=f"{code}-{n}".encode(),
                    value=json.dumps(envelope).encode(),
                )
            producer.flush(60)
        finally:
            producer.close()
        results = KafkaConsumer(
            settings.command_results_topic,
            bootstrap_servers=settings.bootstrap_servers,
            group_id=bench.group("s12", f"results-{rep}"),
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        log = ROOT / ".run" / "logs" / f"bench-{bench.tag}-s12-consumer.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as handle:
            consumer = subprocess.Popen(
                [sys.executable, "-m", "infra.cli", "command-consumer"],
                cwd=ROOT,
                env=settings_env(settings.model_copy(update={"log_level": "WARNING"})),
                stdout=handle,
                stderr=subprocess.STDOUT,
            )
        seen: set[str] = set()
        first = last = 0.0
        deadline = Deadline(600, "the command consumer's results")
        try:
            while len(seen) < count:
                deadline.check()
                for records in results.poll(timeout_ms=500).values():
                    for record in records:
                        result = json.loads(record.value)
                        if not result["command_id"].startswith(f"kafka-{rep}-"):
                            continue
                        if result["status"] != "accepted":
                            raise AssertionError(f"a command was refused: {result}")
                        now = time.perf_counter()
                        first = first or now
                        last = now
                        seen.add(result["command_id"])
        finally:
            stop_api(consumer)
            results.close()
        return (count - 1) / (last - first) if last > first else float("nan")

    def in_process(rep: int) -> float:
        return _in_process_rate(settings, codes[0], f"s12r{rep}", max(60, scale.commands // 3))

    rates, baseline = repeat(scale.reps, through_kafka, in_process, label="12 Kafka submissions")
    return [
        Figure(
            scenario="12",
            name="submit_kafka_topic",
            title="SubmitRegistration/s through the Kafka command topic (command-consumer)",
            unit="commands/s",
            higher_is_better=True,
            samples=rates,
            baseline_title="one in-process client, same submissions (DealLedger.execute)",
            baseline_samples=baseline,
            params={"commands_per_rep": count, "partitions": settings.topic_partitions},
        )
    ]
